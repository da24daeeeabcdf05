"""Benchmark: the SimCLR recipe's augmentation stack, batched torch vs per sample.

    python bench/augment_throughput.py [--batch 256] [--batches 5] [--rounds 8] [--threads N]

The stack is the one ``astrounsup train --model simclr`` draws its views with
(``astrounsup.training.contrastive_view_settings`` into
``astrounsup.transforms.contrastive_pipeline``), on batches of 3x64x64 simulated cutouts
asinh-stretched as training stretches them: a brightness change of -1..+1 mag in flux under
the stretch, an arbitrary rotation with a random mirror and a jitter crop (one resampling,
cropped so no corner is empty), seeing 1-3 times worse than 1 arcsec (Gaussian kernel per
sample and band), noise 1-4 times the border noise measured on each cutout, and dust
reddening E(B-V) 0-0.1. The reference applies the same operations one cutout at a time with
numpy and ``scipy.ndimage`` (``rotate``, ``gaussian_filter``).

Targets on 2 cores: batched >= 10x the per-sample version, and >= 5,000 cutouts/s. Exits 1
if either is missed. Not part of the tests (they run it once at a tiny size).
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
from astrounsup.io import AsinhNormalizer
from astrounsup.simulate import simulate_lens_survey
from astrounsup.training import contrastive_view_settings
from astrounsup.transforms import contrastive_pipeline, contrastive_view_size


def per_sample_stack(images, rng, *, settings, jitter=4):
    """The same augmentations, one stretched cutout at a time, with numpy and scipy."""
    size = images.shape[-1]
    side = contrastive_view_size(size, jitter)
    rot_size = side + 2 * jitter
    scale = np.asarray(settings["asinh_scale"])[:, None, None]
    coeff = np.array([BANDS[b].extinction for b in settings["bands"]])
    fwhm_in, pixel_scale = settings["fwhm_in"], settings["pixel_scale"]
    out = []
    for img in images:
        factor = 10 ** (-0.4 * rng.uniform(-1.0, 1.0))
        img = np.arcsinh(factor * np.sinh(scale * img)) / scale
        rot = ndimage.rotate(img, rng.uniform(0.0, 360.0), axes=(1, 2), reshape=False, order=1)
        t = (size - rot_size) // 2
        rot = rot[:, t : t + rot_size, t : t + rot_size]
        if rng.uniform() < 0.5:
            rot = rot[:, :, ::-1]
        dy, dx = rng.integers(-jitter, jitter + 1, 2)
        crop = rot[:, jitter + dy : jitter + dy + side, jitter + dx : jitter + dx + side]
        fwhm_out = rng.uniform(1.0, 3.0) * fwhm_in
        sigma = np.sqrt(fwhm_out**2 - fwhm_in**2) / 2.3548 / pixel_scale
        blurred = np.stack([ndimage.gaussian_filter(band, sigma, mode="reflect") for band in crop])
        border = np.concatenate(
            [blurred[:, :4].reshape(3, -1), blurred[:, -4:].reshape(3, -1)], axis=1
        )
        noise = 1.4826 * np.median(np.abs(border - np.median(border, 1, keepdims=True)), 1)
        depth = rng.uniform(1.0, 4.0)
        noisy = (
            blurred
            + rng.normal(size=blurred.shape) * (noise * np.sqrt(depth**2 - 1))[:, None, None]
        )
        out.append(noisy * 10 ** (-0.4 * coeff * rng.uniform(0.0, 0.1))[:, None, None])
    return np.stack(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description="augmentation throughput")
    parser.add_argument("--batch", type=int, default=256, help="cutouts per batch")
    parser.add_argument("--batches", type=int, default=5, help="batches per timed round")
    parser.add_argument("--rounds", type=int, default=8, help="timed rounds; the best counts")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"python {platform.python_version()}, torch {torch.__version__}, "
        f"{os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads"
    )
    survey = simulate_lens_survey(args.batch, seed=3, nan_fraction=0.0, progress=False)
    norm = AsinhNormalizer().fit(survey.images)
    stretched = norm.transform(survey.images)
    images = torch.from_numpy(stretched)
    settings = contrastive_view_settings(
        bands=survey.bands, size=images.shape[-1], pixel_scale=survey.pixel_scale,
        asinh_scale=norm.scale_,
    )  # fmt: skip
    pipe = contrastive_pipeline(**settings)
    g = torch.Generator().manual_seed(0)
    pipe(images, generator=g)  # warm-up
    # Best of several rounds on both sides, interleaved so that both see the same
    # background load, which comes and goes on a shared machine.
    rng = np.random.default_rng(0)
    best_batched = best_sample = np.inf
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        for _ in range(args.batches):
            out, _ = pipe(images, generator=g)
        best_batched = min(best_batched, (time.perf_counter() - t0) / args.batches)
        t0 = time.perf_counter()
        ref = per_sample_stack(stretched, rng, settings=settings)
        best_sample = min(best_sample, time.perf_counter() - t0)
    batched = args.batch / best_batched
    per_sample = args.batch / best_sample
    if ref.shape != tuple(out.shape):
        msg = f"the reference made {ref.shape}, the stack {tuple(out.shape)}"
        raise RuntimeError(msg)
    print(
        f"SimCLR recipe's view stack on batches of {args.batch} x "
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
