"""Benchmark: the memory of embedding a sharded survey does not grow with the survey.

    python bench/embed_memory.py [--shard 2000] [--shards 1,8] [--workdir DIR]

Simulates ``shard`` 3x64x64 cutouts, writes them as sharded stores of 1 and 8 (``--shards``)
copies (new object ids per copy), trains a tiny CAE once, then runs ``astrounsup embed``
(shard by shard, into a latents set) on each survey in its own process and prints its peak
resident memory (``ru_maxrss`` of the child) and rate. Target: the largest survey's peak
within 25% of the smallest's. Exits 1 if missed. Not part of the tests.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make_survey(folder, survey, copies):
    from astrounsup.io import write_manifest, write_store

    paths = []
    for k in range(copies):
        table = survey.table.copy()
        table["object_id"] = [f"{oid}-{k}" for oid in survey.table["object_id"]]
        paths.append(write_store(folder / f"part{k:03d}.h5", survey.images, table,
                                 bands=survey.bands, pixel_scale=survey.pixel_scale))  # fmt: skip
    write_manifest(folder, paths)
    return folder


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shard", type=int, default=2000)
    parser.add_argument("--shards", default="1,8")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    from astrounsup.pipeline import train_model
    from astrounsup.simulate import simulate_lens_survey

    work = args.workdir or Path(tempfile.mkdtemp(prefix="astrounsup-embed-bench-"))
    survey = simulate_lens_survey(args.shard, seed=3, progress=False)
    counts = [int(c) for c in args.shards.split(",")]
    config = {"recipe": "cae", "steps": 2,
              "config": {"model": {"latent_dim": 16}, "training": {"batch_size": 4}}}  # fmt: skip
    make_survey(work / "train", survey, 1)
    train_model(work / "train", config, out=work / "run", progress=False)
    rows = []
    for c in counts:
        folder = make_survey(work / f"survey{c}", survey, c)
        out = work / f"latents{c}"
        cmd = [sys.executable, "-c", CHILD, str(work / "run" / "last.pt"), str(folder), str(out)]
        t0 = time.perf_counter()
        run = subprocess.run(cmd, capture_output=True, text=True, check=True)
        seconds = time.perf_counter() - t0
        peak = float(run.stdout.strip().splitlines()[-1]) / 1024
        rows.append((c, c * args.shard, peak, c * args.shard / seconds))
    print(f"{'shards':>7}{'cutouts':>10}{'peak RSS [MiB]':>16}{'cutouts/s':>11}")
    for c, n, peak, rate in rows:
        print(f"{c:>7}{n:>10}{peak:>16.0f}{rate:>11.0f}")
    growth = rows[-1][2] / rows[0][2]
    ok = growth <= 1.25
    print(f"peak of {rows[-1][1]} cutouts / peak of {rows[0][1]}: {growth:.2f} (target <= 1.25) "
          f"-> {'met' if ok else 'MISSED'}")  # fmt: skip
    return 0 if ok else 1


CHILD = """
import resource, sys
from astrounsup.cli import main
status = main(["embed", "--checkpoint", sys.argv[1], "--data", sys.argv[2], "--out", sys.argv[3],
               "--quiet"])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
sys.exit(status)
"""


if __name__ == "__main__":
    sys.exit(main())
