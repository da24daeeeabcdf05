"""Benchmark: reading a large grades file (the report's export, saved again by a
spreadsheet: byte-order mark, CRLF line ends).

    python bench/grades_read.py [--n 1000000] [--workdir DIR]

Writes ``n`` grades (one grading act per row, every third object graded twice, ids of the
report's kind, ISO times with milliseconds) and prints the file size, the wall time of
:func:`astrounsup.catalog.read_grades` and its peak Python memory (``tracemalloc``, on a
second read: tracing slows it).
Not part of the tests.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path


def write_grades(path, n):
    rows = ["object_id,grade,kind,time,run"]
    for i in range(n):
        oid = f"sim00001-{i % (2 * n // 3 + 1):07d}"
        grade = ("lens", "not", "unsure")[i % 3]
        rows.append(f"{oid},{grade},lens,2026-12-01T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:"
                    f"{i % 60:02d}.{i % 1000:03d}Z,0123456789abcdef")  # fmt: skip
    path.write_bytes(b"\xef\xbb\xbf" + ("\r\n".join(rows) + "\r\n").encode())


def main(argv=None):
    from astrounsup.catalog import read_grades

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args(argv)
    folder = Path(args.workdir or tempfile.mkdtemp())
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"grades_{args.n}.csv"
    if not path.exists():
        write_grades(path, args.n)
    t0 = time.perf_counter()
    g = read_grades(path)
    wall = time.perf_counter() - t0
    del g
    tracemalloc.start()  # a second read, traced (tracing slows it several times)
    g = read_grades(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    size = path.stat().st_size
    print(f"{args.n} grades, {size / 1e6:.1f} MB: read in {wall:.1f} s, peak Python memory "
          f"{peak / 2**20:.0f} MiB, {len(g)} latest grades")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
