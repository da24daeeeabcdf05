"""Benchmark: the default contrastive augmentation stack, batched torch vs per sample.

    python bench/augment_throughput.py [--batch 256] [--batches 5] [--rounds 8] [--threads N]

The stack (``astrounsup.transforms.contrastive_pipeline``): arbitrary rotation with the
crop that leaves no empty corner, a random mirror / quarter turn, a jitter crop, PSF
degradation (Gaussian kernel, per sample and band, FWHMs from the survey's ``psf_fwhm``),
sky noise to a deeper target depth and dust reddening, on batches of 3x64x64 simulated
cutouts. The reference applies the same operations one cutout at a time with
``scipy.ndimage.rotate``, ``scipy.ndimage.gaussian_filter`` and numpy noise.

Targets on 2 cores: batched >= 10x the per-sample version, and >= 5,000 cutouts/s. Exits 1
if either is missed. Not part of the tests.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np
import torch
from scipy import ndimage

from astrounsup.instrument import BANDS
from astrounsup.simulate import simulate_lens_survey
from astrounsup.transforms import contrastive_pipeline, contrastive_view_size, gather_metadata


def per_sample_stack(images, fwhm, noise_sigma, rng, *, pixel_scale, bands, jitter=4):
    """The same augmentations, one cutout at a time, with scipy and numpy."""
    size = images.shape[-1]
    side = contrastive_view_size(size, jitter)
    rot_size = side + 2 * jitter
    coeff = np.array([BANDS[b].extinction for b in bands])
    out = []
    for img, f_in, sig in zip(images, fwhm, noise_sigma, strict=True):
        angle = rng.uniform(0.0, 360.0)
        rot = ndimage.rotate(img, angle, axes=(1, 2), reshape=False, order=1)
        t = (size - rot_size) // 2
        rot = rot[:, t : t + rot_size, t : t + rot_size]
        rot = np.rot90(rot, rng.integers(4), axes=(1, 2))
        if rng.uniform() < 0.5:
            rot = rot[:, :, ::-1]
        dy, dx = rng.integers(-jitter, jitter + 1, 2)
        crop = rot[:, jitter + dy : jitter + dy + side, jitter + dx : jitter + dx + side]
        factor = rng.uniform(1.0, 1.4)
        k = np.sqrt((factor * f_in) ** 2 - f_in**2) / 2.3548 / pixel_scale
        blurred = np.stack(
            [ndimage.gaussian_filter(crop[j], k[j], mode="reflect") for j in range(len(bands))]
        )
        depth = rng.uniform(1.0, 1.6)
        noisy = (
            blurred + rng.normal(size=blurred.shape) * (sig * np.sqrt(depth**2 - 1))[:, None, None]
        )
        ebv = rng.uniform(0.0, 0.1)
        out.append(noisy * 10 ** (-0.4 * coeff * ebv)[:, None, None])
    return np.stack(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description="augmentation throughput")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--batches", type=int, default=5, help="batches per timed round")
    parser.add_argument("--rounds", type=int, default=8, help="timed rounds; the best counts")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"python {platform.python_version()}, torch {torch.__version__}, "
        f"{os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads"
    )
    survey = simulate_lens_survey(args.batch, seed=3, nan_fraction=0.0)
    images = torch.from_numpy(survey.images)
    meta = gather_metadata(survey.table, np.arange(args.batch), ["psf_fwhm", "noise_sigma"])
    pipe = contrastive_pipeline(
        size=images.shape[-1], pixel_scale=survey.pixel_scale, bands=survey.bands
    )
    g = torch.Generator().manual_seed(0)
    pipe(images, generator=g, meta=meta)  # warm-up
    # Best of several rounds on both sides, interleaved so that both see the same
    # background load, which comes and goes on a shared machine.
    rng = np.random.default_rng(0)
    fwhm = meta["psf_fwhm"].numpy()
    sig = meta["noise_sigma"].numpy()
    best_batched = best_sample = np.inf
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        for _ in range(args.batches):
            out, _ = pipe(images, generator=g, meta=meta)
        best_batched = min(best_batched, (time.perf_counter() - t0) / args.batches)
        t0 = time.perf_counter()
        ref = per_sample_stack(
            survey.images, fwhm, sig, rng, pixel_scale=survey.pixel_scale, bands=survey.bands
        )
        best_sample = min(best_sample, time.perf_counter() - t0)
    batched = args.batch / best_batched
    per_sample = args.batch / best_sample
    assert ref.shape == tuple(out.shape), (ref.shape, tuple(out.shape))
    print(
        f"default contrastive stack on batches of {args.batch} x "
        f"{'x'.join(map(str, images.shape[1:]))} -> {'x'.join(map(str, out.shape[1:]))}"
    )
    print(f"batched torch:                {batched:>10,.0f} cutouts/s")
    print(f"per-sample numpy/scipy:       {per_sample:>10,.0f} cutouts/s")
    ok_ratio, ok_rate = batched >= 10 * per_sample, batched >= 5000
    print(
        f"target >= 10x per-sample: {batched / per_sample:.1f}x -> "
        f"{'met' if ok_ratio else 'MISSED'}"
    )
    print(f"target >= 5,000 cutouts/s: {'met' if ok_rate else 'MISSED'}")
    return 0 if ok_ratio and ok_rate else 1


if __name__ == "__main__":
    sys.exit(main())
