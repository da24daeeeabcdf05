"""Compare the catalogs of two runs' output folders, column by column.

    python bench/compare_runs.py BEFORE AFTER [--ignore-meta date,astrounsup_version,...]

Every catalog (``*.ecsv``, ``*.fits``, ``*.vot``) under ``BEFORE`` is read beside the one at
the same relative path under ``AFTER``; for each column it prints ``same`` (equal values,
NaN equal to NaN, same dtype kind and shape), ``DIFFERS`` (with the largest difference, or
the number of differing rows), ``added`` or ``removed``, and for the ``meta`` keys that
differ, their values. Catalogs present on one side only are named. Paths in ``meta`` are
compared by file name only (two runs in two folders). Exits 1 if any column present on
both sides differs or a catalog is missing from ``AFTER``, else 0.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

SUFFIXES = (".ecsv", ".fits", ".vot")
#: Meta keys that say when and with what a run was made, not what it found.
DEFAULT_IGNORED = ("date", "astrounsup_version", "versions", "step_seconds")


def _catalogs(folder):
    return sorted(p.relative_to(folder) for p in folder.rglob("*") if p.suffix in SUFFIXES)


def _column_difference(a, b):
    """None when equal, else a short description of how they differ."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return f"shape {a.shape} -> {b.shape}"
    if a.dtype.kind in "fc" and b.dtype.kind in "fc":
        same = (a == b) | (np.isnan(a) & np.isnan(b))
        if same.all():
            return None
        diff = np.nanmax(np.abs(a - b)) if np.isfinite(a - b).any() else np.nan
        return f"{int((~same).sum())} values differ, largest by {diff:.3g}"
    if a.dtype.kind != b.dtype.kind and not (a.dtype.kind in "US" and b.dtype.kind in "US"):
        return f"dtype {a.dtype} -> {b.dtype}"
    same = a == b
    if np.all(same):
        return None
    return f"{int(np.size(same) - np.sum(same))} values differ"


def _meta_value(value):
    """Paths compared by their file name."""
    if isinstance(value, str) and "/" in value:
        return Path(value).name
    return value


def compare(before, after, *, ignored=DEFAULT_IGNORED, out=print):
    """Compare the catalogs of two output folders; returns the number of differences."""
    from astropy.table import Table

    before, after = Path(before), Path(after)
    problems = 0
    left, right = _catalogs(before), _catalogs(after)
    for rel in sorted(set(right) - set(left)):
        out(f"{rel}: only in {after}")
    for rel in left:
        if rel not in right:
            out(f"{rel}: MISSING from {after}")
            problems += 1
            continue
        a, b = Table.read(before / rel), Table.read(after / rel)
        lines = []
        if len(a) != len(b):
            lines.append(f"  rows {len(a)} -> {len(b)}")
            problems += 1
        for name in a.colnames:
            if name not in b.colnames:
                lines.append(f"  {name}: removed")
                problems += 1
            elif len(a) == len(b):
                why = _column_difference(a[name], b[name])
                lines.append(f"  {name}: {'same' if why is None else 'DIFFERS: ' + why}")
                problems += why is not None
        lines += [f"  {name}: added" for name in b.colnames if name not in a.colnames]
        for key in sorted(set(a.meta) | set(b.meta)):
            if key in ignored:
                continue
            va, vb = _meta_value(a.meta.get(key)), _meta_value(b.meta.get(key))
            if va != vb:
                lines.append(f"  meta {key}: {va!r} -> {vb!r}")
        out(f"{rel}: {len(a)} rows")
        for line in lines:
            out(line)
    return problems


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument(
        "--ignore-meta", default=",".join(DEFAULT_IGNORED),
        help="comma-separated meta keys left out of the comparison",
    )  # fmt: skip
    args = parser.parse_args(argv)
    for folder in (args.before, args.after):
        if not folder.is_dir():
            parser.error(f"{folder} is not a folder")
    problems = compare(args.before, args.after, ignored=tuple(args.ignore_meta.split(",")))
    print(f"{problems} differences in columns present on both sides")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
