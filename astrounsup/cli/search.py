"""``astrounsup search``: the lens search on your cutouts (the library's
:func:`astrounsup.pipeline.run_lens_search`), for an installed package."""

from __future__ import annotations

import copy
from pathlib import Path


def add_search_options(parser, *, data_help):
    """The options the lens search shares with ``pipelines/lens_search.py`` (all but the
    data and the config)."""
    parser.add_argument("--catalog", type=Path, default=None,
                        help=f"catalog of the FITS cutouts of {data_help} (ids, RA/Dec, "
                             "labels)")  # fmt: skip
    parser.add_argument("--labels", default=None, metavar="COLUMN",
                        help="catalog column of known labels (any type)")  # fmt: skip
    parser.add_argument("--positive", default=None, metavar="VALUE",
                        help="the label of a lens in --labels (default: True or 1)")  # fmt: skip
    parser.add_argument("--labeled-fraction", type=float, default=None, metavar="F",
                        help="share of the known labels that names the clusters; the rest "
                             "measure the result (default: the config's)")  # fmt: skip
    parser.add_argument("--known-lenses", type=Path, default=None, metavar="IDS_FILE",
                        help="file of known lens ids, one per line (no negatives)")  # fmt: skip
    parser.add_argument("--vetted", type=Path, default=None, metavar="GRADES",
                        help="grades exported from a report (CSV/ECSV): fold them into the "
                             "labels and re-rank (needs labels or known lenses)")  # fmt: skip
    parser.add_argument("--vetted-any-run", action="store_true",
                        help="use --vetted grades made on another set of objects (their run "
                             "column), refused otherwise")  # fmt: skip
    parser.add_argument("--steps", type=int, default=None,
                        help="override the training steps of every model")  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=None,
                        help="override the training batch (default: the config's, lowered "
                             "for a small survey)")  # fmt: skip
    parser.add_argument("--k", type=int, default=None,
                        help="override the number of clusters (default: the config's, "
                             "lowered for a small survey)")  # fmt: skip
    parser.add_argument("--fresh", action="store_true",
                        help="redo every step (default: reuse the unchanged ones)")  # fmt: skip
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace what the output folder holds (a run on other data)",
    )


def check_search_options(args):
    """The combinations of options that cannot be: a one-line message, or None."""
    if args.labels and args.known_lenses:
        return "--labels and --known-lenses are two label regimes; give one of them"
    if args.labeled_fraction is not None and not 0 < args.labeled_fraction <= 1:
        return f"--labeled-fraction must be in (0, 1]; got {args.labeled_fraction}"
    if args.positive is not None and not args.labels:
        return "--positive names the lens label of --labels; give --labels"
    return None


def search_config(config, args, *, own_data, root=None):
    """``config`` (a lens-search config's sections) with the labels, ``k`` and batch the
    command line chose. The config's labels are those of the built-in survey: with
    ``own_data``, or labels named on the command line, they are dropped; a relative
    ``known_positives`` path of the config starts from ``root``."""
    config = copy.deepcopy(config)
    cluster = dict(config.get("cluster", {}))
    if own_data or args.labels or args.known_lenses:
        cluster.pop("known_positives", None)
        cluster.pop("labels_column", None)
        fraction = cluster.pop("labeled_fraction", None)
        cluster.pop("positive", None)
        if args.labels:
            cluster["labels_column"] = args.labels
            if args.positive is not None:
                cluster["positive"] = args.positive
            f = fraction if args.labeled_fraction is None else args.labeled_fraction
            cluster["labeled_fraction"] = f
        if args.known_lenses:
            cluster["known_positives"] = str(args.known_lenses)
    else:
        if args.labeled_fraction is not None:
            cluster["labeled_fraction"] = args.labeled_fraction
        known = cluster.get("known_positives")
        if isinstance(known, str) and root is not None:
            cluster["known_positives"] = str(Path(root) / known)
    if args.k is not None:
        cluster["k"] = args.k
    config["cluster"] = cluster
    if args.batch_size is not None:
        model = config.setdefault("model", {}).setdefault("config", {})
        model.setdefault("training", {})["batch_size"] = args.batch_size
    return config


def open_data(data, catalog, out):
    """The store of ``data`` (FITS cutouts are ingested into ``out/cutouts.h5``), saying
    what was ingested."""
    from astrounsup.pipeline import open_or_ingest

    store, report = open_or_ingest(data, store=Path(out) / "cutouts.h5", catalog=catalog)
    if report is not None:
        resumed = f" (resumed after {report.resumed_from})" if report.resumed_from else ""
        print(f"ingested {report.n_written} cutouts into {report.store}{resumed}; "
              f"{report.n_rejected} rejected (listed in {report.rejects})")  # fmt: skip
    print(f"using the store {store}")
    return store


def add_arguments(name, parser):
    parser.add_argument("data", help="a cutout store (.h5), a folder or glob of FITS cutouts, "
                                     "or a catalog with a file column")  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("lens_search"),
                        help="output folder")  # fmt: skip
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--config", type=Path, default=None,
                       help="a lens-search TOML (sections model, features, cluster, "
                            "anomalies, report; default: the shipped encoder's)")  # fmt: skip
    which.add_argument("--full", action="store_true",
                       help="train SimCLR from scratch (1,200 steps) instead of embedding "
                            "with the shipped encoder: for cutouts it does not take")  # fmt: skip
    add_search_options(parser, data_help="DATA")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=_search)


def _search(args):
    import tomllib

    from astrounsup.pipeline import LENS_SEARCH_CONFIG, LENS_SEARCH_FULL_CONFIG, run_lens_search

    problem = check_search_options(args)
    if problem:
        raise ValueError(problem)
    if args.config is not None:
        try:
            with open(args.config, "rb") as f:
                config = tomllib.load(f)
        except tomllib.TOMLDecodeError as err:
            msg = f"{args.config}: not a TOML file ({err})"
            raise ValueError(msg) from None
        for section in ("survey", "output"):  # the repository's built-in survey and folder
            config.pop(section, None)
    else:
        config = LENS_SEARCH_FULL_CONFIG if args.full else LENS_SEARCH_CONFIG
    config = search_config(config, args, own_data=True)
    store = open_data(args.data, args.catalog, args.out)
    try:
        run_lens_search(store, args.out, config, steps=args.steps, fresh=args.fresh,
                        vetted=args.vetted, any_run=args.vetted_any_run,
                        overwrite=args.overwrite, progress=not args.quiet)  # fmt: skip
    except ValueError as err:
        if str(err).startswith("init: the shipped encoder"):
            raise ValueError(f"{err}; --full trains one from scratch") from None
        raise
    return 0
