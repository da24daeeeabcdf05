"""Benchmark: reading cutouts, from FITS files, from the HDF5 store, and from memory.

    python bench/io_throughput.py [--n 20000] [--workdir DIR] [--batch-size 256]
                                  [--workers 0] [--more-workers 2] [--repeats 5]

Makes ``n`` simulated 3x64x64 cutouts (once; reused from ``--workdir`` if there), writes
them as one FITS file per object, ingests those into an HDF5 store with
``astrounsup.io.ingest``, and prints cutouts per second for

(a) one FITS file per object read with astropy (``astropy.io.fits.getdata``),
(b) the ingested store through ``CutoutDataset.loader`` (a ``torch.utils.data.DataLoader``
    of whole batches; NaN filling and masks included; each process checks every cutout
    against its checksum in its first epoch, whose rate is printed too), also shuffled,
    without workers, and
    through a plain ``DataLoader(dataset, batch_size=...)`` that collates item by item,
(c) a plain numpy copy of the same bytes in memory, batch by batch (the ceiling),
(d) the per-cutout checksums of the same bytes in memory (the cost of checking them).

Targets: (b) >= 20x (a) and (b) >= 30% of (c). Exits 1 if either is missed. Every reader
runs on a warm page cache (the files were just written or read). Not part of the tests.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def _rate(n, seconds):
    return n / seconds


def bench_fits(paths, repeats):
    from astropy.io import fits

    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        for p in paths:
            fits.getdata(p)
        best = min(best, time.perf_counter() - t0)
    return _rate(len(paths), best)


def bench_store(store, *, batch_size, workers, repeats, shuffle, per_item=False, check=True):
    """Batches from ``CutoutDataset.loader`` (whole-batch reads), or with ``per_item``
    from a plain ``DataLoader(dataset, batch_size=...)`` with its default collation.
    ``check=False`` reads without the checksums, only to measure what checking costs."""
    from astrounsup.io import CutoutDataset

    ds = CutoutDataset(store)
    if not check:
        ds._source.checksums = None  # the reader's own switch: no checksums, no checking
    if per_item:
        loader = torch.utils.data.DataLoader(
            ds,
            batch_size=batch_size,
            num_workers=workers,
            shuffle=shuffle,
            generator=torch.Generator().manual_seed(0),
            persistent_workers=workers > 0,
        )
    else:
        loader = ds.loader(batch_size, shuffle=shuffle, num_workers=workers, seed=0)
    best = np.inf
    # The first epoch starts the (persistent) workers, as the first epoch of training does,
    # and checks every cutout against its checksum; it is timed apart from the best.
    for epoch in range(repeats + 1):
        t0 = time.perf_counter()
        n = 0
        for images, _masks, _index in loader:
            n += images.shape[0]
        if epoch:
            best = min(best, time.perf_counter() - t0)
        else:
            first = time.perf_counter() - t0
    assert n == len(ds)
    return _rate(len(ds), best), _rate(len(ds), first)


def bench_memory(images, *, batch_size, repeats, reuse=False):
    """Batches copied out of an in-memory array: into a new array each (what any loader
    must hand out), or with ``reuse`` into one buffer (a bound no loader can reach)."""
    best = np.inf
    out = np.empty((batch_size, *images.shape[1:]), dtype=images.dtype)
    for _ in range(repeats):
        t0 = time.perf_counter()
        for lo in range(0, images.shape[0], batch_size):
            chunk = images[lo : lo + batch_size]
            if reuse:
                np.copyto(out[: chunk.shape[0]], chunk)
            else:
                chunk.copy()
        best = min(best, time.perf_counter() - t0)
    return _rate(images.shape[0], best)


def bench_checksums(images, *, batch_size, repeats):
    """The store's per-cutout checksums computed over the in-memory array, batch by batch:
    what checking costs a reader on its first pass."""
    from astrounsup._checksums import row_checksums

    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        for lo in range(0, images.shape[0], batch_size):
            row_checksums(images[lo : lo + batch_size])
        best = min(best, time.perf_counter() - t0)
    return _rate(images.shape[0], best)


def prepare(workdir, n):
    from astrounsup.io import ingest, read_store, store_info, write_fits_cutouts
    from astrounsup.simulate import simulate_lens_survey

    fits_dir, store = workdir / "fits", workdir / "cutouts.h5"
    if len(list(fits_dir.glob("*.fits"))) != n:
        t0 = time.perf_counter()
        survey = simulate_lens_survey(n, seed=1, progress=False)
        write_fits_cutouts(
            fits_dir,
            survey.images,
            survey.table,
            bands=survey.bands,
            pixel_scale=survey.pixel_scale,
        )
        print(f"simulated {n} cutouts and wrote FITS in {time.perf_counter() - t0:.0f} s")
        store.unlink(missing_ok=True)
    # A store from before checksums (format 3) would be read unchecked: ingest it again.
    if not store.exists() or not store_info(store)["has_checksums"]:
        t1 = time.perf_counter()
        report = ingest(fits_dir, store, overwrite=True, progress=False)
        t2 = time.perf_counter()
        print(
            f"ingested {n} cutouts in {t2 - t1:.0f} s ({n / (t2 - t1):,.0f} cutouts/s, "
            f"{report.n_rejected} rejected)"
        )
    images, _, _ = read_store(store)
    return sorted(fits_dir.glob("*.fits")), store, images


def main(argv=None):
    parser = argparse.ArgumentParser(description="cutout reading throughput")
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="DataLoader workers of (b); 0, the default, is fastest on 2 cores",
    )
    parser.add_argument(
        "--more-workers", type=int, default=2, help="workers of the extra rows, for comparison"
    )
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="astrounsup-io-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(
        f"python {platform.python_version()}, torch {torch.__version__}, "
        f"{os.cpu_count()} CPUs; data in {workdir}"
    )
    paths, store, images = prepare(workdir, args.n)
    n = len(paths)
    a = bench_fits(paths, 2)

    def store_rate(workers, shuffle=False, per_item=False, repeats=args.repeats, check=True):
        return bench_store(
            store,
            batch_size=args.batch_size,
            workers=workers,
            repeats=repeats,
            shuffle=shuffle,
            per_item=per_item,
            check=check,
        )

    b, _ = store_rate(args.workers)
    b_unchecked, _ = store_rate(args.workers, check=False)
    # First epochs of fresh datasets, checked and not in turn (the best of three each).
    firsts = {True: 0.0, False: 0.0}
    for _ in range(3):
        for check in (False, True):
            firsts[check] = max(firsts[check], store_rate(args.workers, repeats=1, check=check)[1])
    b_first, b_unchecked_first = firsts[True], firsts[False]
    b_shuffled, b_shuffled_first = store_rate(args.workers, shuffle=True, repeats=2)
    b_more, _ = store_rate(args.more_workers, repeats=2)
    b_items, _ = store_rate(args.more_workers, per_item=True, repeats=2)
    c = bench_memory(images, batch_size=args.batch_size, repeats=args.repeats)
    c_reuse = bench_memory(images, batch_size=args.batch_size, repeats=args.repeats, reuse=True)
    d = bench_checksums(images, batch_size=args.batch_size, repeats=args.repeats)
    w = args.more_workers
    print(
        f"{n} cutouts of {'x'.join(map(str, images.shape[1:]))}, batches of "
        f"{args.batch_size}, best of {args.repeats} epochs"
    )
    print(f"(a) one FITS file per object, astropy.io.fits.getdata: {a:>10,.0f} cutouts/s")
    print(
        f"(b) HDF5 store, CutoutDataset.loader, {args.workers} workers:       "
        f"{b:>10,.0f} cutouts/s"
    )
    print(f"    its first epoch (checksums checked):              {b_first:>10,.0f} cutouts/s")
    print(f"    same, not checked (for comparison only):          {b_unchecked:>10,.0f} cutouts/s")
    print(
        f"    its first epoch, not checked:                     {b_unchecked_first:>10,.0f} "
        "cutouts/s"
    )
    print(f"    same, shuffled order:                             {b_shuffled:>10,.0f} cutouts/s")
    print(
        f"    its first epoch (checksums checked):              {b_shuffled_first:>10,.0f} "
        "cutouts/s"
    )
    print(f"    same, {w} worker processes:                        {b_more:>10,.0f} cutouts/s")
    print(f"    DataLoader(dataset, batch_size), {w} workers:      {b_items:>10,.0f} cutouts/s")
    print(f"(c) numpy copy of the same bytes in memory:           {c:>10,.0f} cutouts/s")
    print(f"    same, into one reused buffer:                     {c_reuse:>10,.0f} cutouts/s")
    print(f"(d) XXH3 checksums of the same bytes in memory:       {d:>10,.0f} cutouts/s")
    ok_a, ok_c = b >= 20 * a, b >= 0.3 * c
    print(f"target (b) >= 20 x (a): {b / a:.1f}x -> {'met' if ok_a else 'MISSED'}")
    print(f"target (b) >= 30% of (c): {100 * b / c:.0f}% -> {'met' if ok_c else 'MISSED'}")
    return 0 if ok_a and ok_c else 1


if __name__ == "__main__":
    sys.exit(main())
