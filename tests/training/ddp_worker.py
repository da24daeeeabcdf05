"""Run by tests/training/test_distributed.py under torchrun: a tiny CAE, 2 CPU processes."""

import sys
from pathlib import Path

import torch
import torch.distributed as dist

from astrounsup.io import CutoutDataset
from astrounsup.models import ConvAutoencoder
from astrounsup.training import Trainer


def blobs(n=48, size=32):
    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    cx, cy = (torch.rand(2, n, generator=g) * 0.5 + 0.25) * size
    blob = torch.exp(-((xx - cx[:, None, None]) ** 2 + (yy - cy[:, None, None]) ** 2) / 8.0)
    return blob[:, None].repeat(1, 3, 1, 1) + 0.05 * torch.randn(n, 3, size, size, generator=g)


def train(out, rank):
    torch.manual_seed(1)
    model = ConvAutoencoder(3, size=32, latent_dim=8, widths=(8, 16))
    trainer = Trainer(
        model,
        max_steps=6,
        batch_size=8,
        lr=3e-3,
        val_fraction=0.25,
        eval_every=3,
        device="cpu",
        seed=3,
        out_dir=out,
    )
    trainer.fit(CutoutDataset(blobs().numpy()))
    torch.save(model.state_dict(), Path(out) / f"rank{rank}.pt")


if __name__ == "__main__":
    dist.init_process_group("gloo")
    try:
        train(sys.argv[1], dist.get_rank())
    finally:
        dist.destroy_process_group()
