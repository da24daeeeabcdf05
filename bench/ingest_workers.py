"""Benchmark: ingesting FITS cutouts with worker processes, and into shards.

    python bench/ingest_workers.py [--n 4000] [--workers 2] [--workdir DIR] [--repeats 2]

Makes ``n`` simulated 3x64x64 cutouts as one FITS file per object (once; reused from
``--workdir``), then ingests them with :func:`astrounsup.io.ingest` in one process and
with ``--workers`` worker processes parsing the FITS files, and once more into shards of
``n / 4`` entries with the same workers. Prints cutouts per second of each (best of
``--repeats``, the three interleaved, on a warm page cache), checks that the stores hold
the same pixels, catalog and checksums, and exits 1 if the workers' rate is below 1.8x
the one-process rate (the target for 2 workers on 2 cores). Not part of the tests.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def prepare(fits_dir, n):
    from astrounsup.io import write_fits_cutouts
    from astrounsup.simulate import simulate_lens_survey

    if len(list(fits_dir.glob("*.fits"))) == n:
        return
    survey = simulate_lens_survey(n, seed=1, progress=False)
    write_fits_cutouts(
        fits_dir, survey.images, survey.table, bands=survey.bands, pixel_scale=survey.pixel_scale
    )


def timed_ingests(fits_dir, runs, repeats):
    """Best rate of each of ``runs`` (name -> (dest, options)), the runs interleaved
    ``repeats`` times so that a slow spell of a shared machine hits them alike."""
    from astrounsup.io import ingest

    best, reports = dict.fromkeys(runs, 0.0), {}
    for _ in range(repeats):
        for name, (dest, options) in runs.items():
            t0 = time.perf_counter()
            reports[name] = ingest(fits_dir, dest, overwrite=True, progress=False, **options)
            best[name] = max(best[name], reports[name].n_written / (time.perf_counter() - t0))
    return best, reports


def main(argv=None):
    parser = argparse.ArgumentParser(description="ingest rate with worker processes")
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    from astrounsup.io import read_store, store_info

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="astrounsup-ingest-bench-"))
    fits_dir = workdir / "fits"
    prepare(fits_dir, args.n)
    runs = {
        "one": (workdir / "one.h5", {}),
        "many": (workdir / "many.h5", {"workers": args.workers}),
        "shards": (
            workdir / "shards",
            {"workers": args.workers, "shard_size": max(1, args.n // 4)},
        ),
    }
    rates, reports = timed_ingests(fits_dir, runs, args.repeats)
    one, many, sharded, report = rates["one"], rates["many"], rates["shards"], reports["shards"]
    a, b, c = (read_store(workdir / name) for name in ("one.h5", "many.h5", "shards"))
    same = all(
        np.array_equal(x[0], a[0], equal_nan=True)
        and list(x[1]["object_id"]) == list(a[1]["object_id"])
        for x in (b, c)
    )
    import h5py

    with h5py.File(workdir / "one.h5") as f, h5py.File(workdir / "many.h5") as g:
        same = same and np.array_equal(f["checksums"][...], g["checksums"][...])
    print(f"{os.cpu_count()} CPUs; {args.n} FITS cutouts of 3x64x64 in {fits_dir}")
    print(f"one process:                  {one:8.0f} cutouts/s")
    print(f"{args.workers} worker processes:           {many:8.0f} cutouts/s ({many / one:.2f}x)")
    print(
        f"{args.workers} workers, {len(report.shards)} shards:        {sharded:8.0f} cutouts/s "
        f"({sharded / one:.2f}x); {store_info(workdir / 'shards')['shape'][0]} cutouts"
    )
    print(f"same pixels, catalog ids and checksums: {same}")
    ok = many >= 1.8 * one and same
    print(f"target >= 1.8x with {args.workers} workers: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
