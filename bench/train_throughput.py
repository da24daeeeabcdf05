"""Benchmark: the trainer's overhead over a bare PyTorch loop, for CAE, VAE and SimCLR.

    python bench/train_throughput.py [--steps 6] [--batch 256] [--models cae,vae,simclr]

For each model, the same number of steps on batches of 3x64x64 simulated cutouts drawn from
the same ``CutoutDataset`` (NaN filling, asinh normalisation): once with a hand-written loop
(fetch a batch, forward, loss, backward, AdamW step) and once with
``astrounsup.training.Trainer`` (plus its shuffled epochs, warm-up/cosine schedule, gradient
clipping, finiteness check and history). Prints cutouts/s for both and the overhead;
target: under 10% on 2 CPU cores. Also prints the time per batch of the data pipeline that
both loops share. Exits 1 if the target is missed.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from astrounsup.io import CutoutDataset
from astrounsup.simulate import simulate_lens_survey
from astrounsup.training import Trainer, build_model, fit_normalizer


def bare_loop(model, objective, dataset, steps, batch):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    n = len(dataset) - batch + 1
    t0 = time.perf_counter()
    for step in range(steps):
        start = (step * batch) % n
        images, masks, _ = dataset[list(range(start, start + batch))]
        g = torch.Generator().manual_seed(step)
        loss = objective(model, images, masks, g)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def trainer_loop(model, objective, dataset, steps, batch):
    trainer = Trainer(
        model,
        objective=objective,
        max_steps=steps,
        batch_size=batch,
        val_fraction=0.0,
        device="cpu",
        lr=1e-3,
        warmup_steps=1,
        progress=False,
    )
    t0 = time.perf_counter()
    trainer.fit(dataset)
    return time.perf_counter() - t0


def main(argv=None):
    parser = argparse.ArgumentParser(description="trainer overhead")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--models", default="cae,vae,simclr")
    args = parser.parse_args(argv)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    survey = simulate_lens_survey(args.batch * 2, seed=2, progress=False)
    norm = fit_normalizer(survey.images, bands=survey.bands)
    dataset = CutoutDataset(survey.images, table=survey.table, bands=survey.bands, normalizer=norm)
    t0 = time.perf_counter()
    for k in range(3):
        dataset[list(range(k, k + args.batch))]
    print(
        f"shared data pipeline: {(time.perf_counter() - t0) / 3 * 1000:.0f} ms per batch "
        f"of {args.batch}"
    )
    ok = True
    for name in args.models.split(","):
        times = {}
        for kind in ("bare", "trainer", "bare2", "trainer2"):
            model, objective, _ = build_model(  # seeded weights (seed=0)
                name, bands=survey.bands, size=64, pixel_scale=survey.pixel_scale,
                asinh_scale=dataset.normalizer.scale_,
            )  # fmt: skip
            # Warm-up step outside the timing (allocator, first-call costs).
            bare_loop(model, objective, dataset, 1, args.batch)
            if kind.startswith("bare"):
                times[kind] = bare_loop(model, objective, dataset, args.steps, args.batch)
            else:
                times[kind] = trainer_loop(model, objective, dataset, args.steps, args.batch)
        bare = min(times["bare"], times["bare2"])
        ours = min(times["trainer"], times["trainer2"])
        overhead = ours / bare - 1
        ok &= overhead < 0.10
        n = args.steps * args.batch
        print(
            f"{name:7s} bare loop {n / bare:7.1f} cutouts/s | trainer {n / ours:7.1f} "
            f"cutouts/s | overhead {100 * overhead:+.1f}% -> "
            f"{'met' if overhead < 0.10 else 'MISSED'} (< 10%)"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
