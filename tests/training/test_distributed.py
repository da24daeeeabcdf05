import subprocess
import sys
from pathlib import Path

import torch

from astrounsup.training import load_checkpoint

WORKER = Path(__file__).with_name("ddp_worker.py")


def test_torchrun_two_cpu_processes(tmp_path):
    """DDP on gloo: both ranks end with exactly the same weights, close to one process
    seeing the whole batch; only rank 0 writes the checkpoint.

    Close, not equal: the all-reduce sums gradients in another order, and Adam moves a
    weight whose gradient is tiny by about lr * sign(gradient), so such weights may differ
    by up to lr per step (6 steps x 3e-3).
    """
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            str(WORKER),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    for key in r0:
        torch.testing.assert_close(r0[key], r1[key], rtol=0, atol=0)
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 6

    sys.path.insert(0, str(WORKER.parent))
    try:
        import ddp_worker
    finally:
        sys.path.pop(0)
    single = tmp_path / "single"
    single.mkdir()
    ddp_worker.train(single, 0)
    one = torch.load(single / "rank0.pt", weights_only=True)
    for key in r0:
        torch.testing.assert_close(r0[key], one[key], rtol=0, atol=6 * 3e-3)
    moved = sum(float((r0[k] - one[k]).abs().max()) > 1e-4 for k in r0)
    assert moved < len(r0) / 2  # most tensors agree to 1e-4
