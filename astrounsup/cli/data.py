"""``astrounsup ingest``, ``info`` and ``features``: FITS cutouts into a store, what a store
holds, and physics measured on its pixels."""

from __future__ import annotations

import time
from pathlib import Path

from astrounsup.cli._common import comma_list


def add_arguments(name, parser):
    if name == "ingest":
        _ingest_arguments(parser)
    elif name == "features":
        _features_arguments(parser)
    else:
        parser.add_argument(
            "store", type=Path,
            help="an HDF5 cutout store, or a folder of shards (or its shards.json)",
        )  # fmt: skip
        parser.add_argument(
            "--verify",
            action="store_true",
            help="check every cutout against its checksum; exit status 1 if any is damaged",
        )
        parser.set_defaults(func=_info)


def _features_arguments(parser):
    from astrounsup.cli._common import add_output_options
    from astrounsup.pipeline.features import FEATURES_DEFAULTS as D

    parser.add_argument("store", type=Path, help="an HDF5 cutout store (or a folder of shards)")
    parser.add_argument(
        "--red", default=D["red"],
        help="the band whose light is subtracted (None: the reddest of the store's bands)",
    )  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=D["batch_size"],
                        help="cutouts measured at once")  # fmt: skip
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_output_options(parser, seed=False)
    parser.set_defaults(func=_features)


def _features(args):
    from astrounsup.cli._common import print_paths
    from astrounsup.pipeline import check_outputs, measure_arc_features

    check_outputs(args.out, ["arc_features"], fmt=args.format, overwrite=args.overwrite)
    config = {"red": args.red, "batch_size": args.batch_size}
    result = measure_arc_features(args.store, config, inputs={"store": args.store},
                                  progress=not args.quiet)  # fmt: skip
    if result.summary["note"]:
        print(result.summary["note"])
    table = result.tables["arc_features"]
    print(f"{result.summary['n_features']} arc features of {len(table)} cutouts; rank 1 by the "
          f"arc score: {table['object_id'][int(table['arc_rank'].argmin())]}")  # fmt: skip
    print_paths(result.write(args.out, fmt=args.format, overwrite=args.overwrite))
    return 0


def _ingest_arguments(parser):
    from astrounsup.io import BAND_FILE_PATTERN, COMPRESSIONS, MAX_BAD_FRACTION

    parser.add_argument(
        "src",
        help="a folder, glob or file of FITS cutouts, or a catalog (CSV, ECSV or FITS table) "
        "with a file column; with --catalog, the folder its relative paths start from",
    )
    parser.add_argument(
        "dest", type=Path,
        help="the store to write (.h5); with --shard-size, the folder of shards",
    )  # fmt: skip
    parser.add_argument(
        "--catalog",
        type=Path,
        help="CSV/ECSV/FITS table with a file column whose other columns go into the "
        "store's catalog; its relative paths start from SRC",
    )
    parser.add_argument("--file-column", default="file", help="catalog column of file paths")
    parser.add_argument(
        "--id-column", default=None,
        help="catalog column of object ids (None: object_id when there, else file names)",
    )  # fmt: skip
    parser.add_argument(
        "--allow-outside", action="store_true",
        help="read catalog files outside SRC's folder too (absolute paths, '..')",
    )  # fmt: skip
    parser.add_argument(
        "--band-pattern",
        default=None,
        help="regex with groups object_id and band grouping per-band files (e.g. "
        f"{BAND_FILE_PATTERN}); None: one file per object",
    )
    parser.add_argument(
        "--bands", default=None, help="comma-separated bands to keep, in order (None: all)"
    )
    parser.add_argument(
        "--compression",
        choices=[c or "none" for c in COMPRESSIONS],
        default="none",
        help="compression of the images (none reads fastest)",
    )
    parser.add_argument(
        "--max-bad-fraction", type=float, default=MAX_BAD_FRACTION,
        help="reject a cutout with a band having more than this fraction of bad pixels "
        "(or none good)",
    )  # fmt: skip
    parser.add_argument(
        "--shard-size", type=int, default=None, metavar="N",
        help="write DEST as a folder of stores of N entries each (shard-00000.h5, ...), "
        "read as one store; each shard resumes on its own",
    )  # fmt: skip
    parser.add_argument(
        "--workers", type=int, default=1,
        help="processes parsing the FITS files (the store is the same for any number)",
    )  # fmt: skip
    parser.add_argument("--overwrite", action="store_true", help="start again from scratch")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=_ingest)


def _ingest(args):
    from astrounsup.io import ingest

    t0 = time.perf_counter()
    report = ingest(
        args.src,
        args.dest,
        catalog=args.catalog,
        bands=tuple(comma_list(args.bands)) if args.bands else None,
        file_column=args.file_column,
        id_column=args.id_column,
        band_pattern=args.band_pattern,
        compression=None if args.compression == "none" else args.compression,
        overwrite=args.overwrite,
        progress=not args.quiet,
        allow_outside=args.allow_outside,
        max_bad_fraction=args.max_bad_fraction,
        workers=args.workers,
        shard_size=args.shard_size,
    )
    resumed = f" (resumed after {report.resumed_from} entries)" if report.resumed_from else ""
    shards = f" in {len(report.shards)} shards" if report.shards else ""
    print(
        f"{report.store}: {report.n_written} cutouts written{shards}, {report.n_rejected} "
        f"rejected{resumed} in {time.perf_counter() - t0:.1f} s"
    )
    if report.n_rejected:
        print(f"rejects, with file, object and reason: {report.rejects}")
    return 0


def _info(args):
    from astropy.table import Table

    from astrounsup.io import rejects_path, store_info, verify_store

    info = store_info(args.store)
    shards = info.get("shards")
    first = shards[0] if shards else info
    n, bands, ny, nx = info["shape"]
    rows = [("store", info["path"])]
    if shards:
        sizes = [s["shape"][0] for s in shards]
        rows += [
            ("format", f"{info['format']} v{info['format_version']}: {len(shards)} stores"),
            ("shards", f"{min(sizes)} to {max(sizes)} cutouts each: {_shard_names(shards)}"),
        ]
    else:
        rows.append(
            ("format", f"{info['format']} v{info['format_version']}, complete: {info['complete']}")
        )
    rows += [
        ("cutouts", f"{n} of {bands} bands x {ny} x {nx} px"),
        ("bands", ", ".join(info["bands"])),
        ("pixel scale", f"{info['pixel_scale']:.4g} arcsec/px"),
        ("flux unit", info["flux_unit"]),
        (
            "storage",
            f"chunks of {first['chunks'][0]} cutouts, compression "
            f"{first['compression'] or 'none'}, {info['size_bytes'] / 2**20:.1f} MiB"
            + (", with masks" if info["has_masks"] else ""),
        ),
        ("catalog", ", ".join(info["columns"])),
        (
            "checksums",
            f"{info['checksum']} of every cutout, checked when read"
            if info["has_checksums"]
            else "none (written before format 3: damage cannot be detected)",
        ),
        (
            "written",
            f"{first.get('date', 'unknown')} by astrounsup {first['astrounsup_version']}",
        ),
    ]
    folder = args.store if args.store.is_dir() else args.store.parent
    rej = folder / "rejects.ecsv" if shards else rejects_path(args.store)
    if rej.exists():
        rows.append(("rejects", f"{len(Table.read(rej))} in {rej}"))
    status = 0
    if args.verify:
        damaged = verify_store(args.store)
        if damaged.size:
            ids = _ids_of(args.store, damaged)
            rows.append(("verified", f"{damaged.size} of {n} cutouts DAMAGED: {ids}"))
            status = 1
        else:
            rows.append(("verified", f"all {n} cutouts match their checksums"))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:>{width}}: {value}")
    return status


def _shard_names(shards, most=3):
    names = [Path(s["path"]).name for s in shards]
    if len(names) <= most:
        return ", ".join(names)
    return f"{names[0]}, {names[1]}, ..., {names[-1]}"


def _ids_of(store, rows, most=20):
    """The object ids of store rows ``rows``, at most ``most`` of them, as text."""
    from astrounsup.io import CutoutDataset

    ids = CutoutDataset(store).table["object_id"][rows[:most]]
    more = f" and {len(rows) - most} more" if len(rows) > most else ""
    return ", ".join(map(str, ids)) + more
