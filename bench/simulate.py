"""Benchmark: how fast the built-in survey simulator makes cutouts.

    python bench/simulate.py [--n 10000] [--size 64] [--bands g,r,i] [--device cpu]
                             [--threads N] [--write DIR]

Prints cutouts per second for ``n`` cutouts (target: 10,000 cutouts of 3x64x64 in under 60 s
on 2 cores) and, with ``--write``, the time to write the HDF5 store and the FITS files.
Exits 1 if the target is missed. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time

import torch

from astrounsup.simulate import simulate_lens_survey

TARGET_SECONDS_PER_10K = 60.0


def main(argv=None):
    parser = argparse.ArgumentParser(description="survey simulator throughput")
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--bands", default="g,r,i")
    parser.add_argument("--device", default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--write", default=None, help="also time writing into this directory")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"python {platform.python_version()}, torch {torch.__version__}, "
        f"{os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads, "
        f"device {args.device or 'cpu'}"
    )
    bands = tuple(args.bands.split(","))
    simulate_lens_survey(
        64, bands=bands, size=args.size, seed=0, device=args.device, progress=False
    )  # warm-up
    t0 = time.perf_counter()
    survey = simulate_lens_survey(
        args.n, bands=bands, size=args.size, seed=args.seed, device=args.device, progress=False
    )
    elapsed = time.perf_counter() - t0
    rate = args.n / elapsed
    print(
        f"simulated {args.n} cutouts of {len(bands)}x{args.size}x{args.size} in "
        f"{elapsed:.1f} s: {rate:,.0f} cutouts/s"
    )
    if args.write:
        from astrounsup.io import write_fits_cutouts, write_store

        out = args.write if args.write != "tmp" else tempfile.mkdtemp()
        t0 = time.perf_counter()
        write_store(
            os.path.join(out, "cutouts.h5"),
            survey.images,
            survey.table,
            bands=survey.bands,
            pixel_scale=survey.pixel_scale,
        )
        t1 = time.perf_counter()
        write_fits_cutouts(
            os.path.join(out, "fits"),
            survey.images,
            survey.table,
            bands=survey.bands,
            pixel_scale=survey.pixel_scale,
        )
        t2 = time.perf_counter()
        print(
            f"wrote the HDF5 store in {t1 - t0:.1f} s and {args.n} FITS files in "
            f"{t2 - t1:.1f} s ({args.n / (t2 - t1):,.0f} files/s)"
        )
    budget = TARGET_SECONDS_PER_10K * args.n / 10_000
    ok = elapsed <= budget
    print(f"target: {args.n} cutouts in <= {budget:.0f} s -> {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
