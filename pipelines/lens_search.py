"""Search a survey's cutouts for strong lenses and anomalies: yours, or the built-in one.

    python pipelines/lens_search.py [--data PATH] [--catalog CAT]
                                    [--labels COLUMN [--positive VALUE]
                                     [--labeled-fraction F]]
                                    [--known-lenses IDS_FILE] [--vetted GRADES]
                                    [--config TOML] [--out DIR] [--steps N] [--fresh]

``--data`` is a cutout store (``.h5``), a folder or glob of FITS cutouts, or a catalog
with a file column; FITS cutouts are ingested into ``OUT/cutouts.h5`` first (an
interrupted ingest resumes). Without ``--data`` the built-in synthetic survey
(``pipelines/configs/synthetic_survey.toml``) is made unless its store exists, and its
labels are those the config names: the README main job.

The built-in survey lists 20 of its lenses as known (``known_lenses.txt``, beside its
store; its config's ``known_lenses``): the main job ranks every other object by its lens
score from them, as a team with a list of known lenses would.

Reads the TOML config (``pipelines/configs/lens_search.toml``, the main job: it embeds
with the encoder shipped with the package, which takes g, r, i cutouts of 64 px at
0.168-0.30 arcsec/px; ``--config pipelines/configs/lens_search_full.toml`` trains SimCLR
from scratch as long as ``eval/`` measures, for any survey) and runs
:func:`astrounsup.pipeline.run_lens_search`: trains (or loads) the configured model and
embeds every cutout; clusters the latents; with labels (``--labels COLUMN``, of any type, the lens
label named by ``--positive`` unless it is True or 1: a share
``--labeled-fraction`` names the clusters and the rest measure the result) or a list of
known lenses (``--known-lenses``, one id per line) also names the clusters and ranks every
object by its own lens score; ranks every object by anomaly scores. With your own data the
config's labels column (the built-in survey's truth) is not used: without ``--labels`` or
``--known-lenses`` the run has no labels. Labels are checked against the data before
anything is trained.

``--vetted`` takes the grades exported from a run's report (``object_id, grade, kind,
time``): they join the labels and every object is ranked again (``OUT/rank/``, the
report's candidates follow it); the steps before are reused.

Everything lands in ``--out`` (default: the config's ``[output] directory``): the runs,
latents, ``cluster/`` and ``anomalies/`` catalogs and figures, and ``manifest.json``; a
re-run reuses every finished step whose inputs and settings are unchanged (``--fresh``
redoes all).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = Path(__file__).parent / "configs" / "lens_search.toml"


def _survey_config(path):
    spec = importlib.util.spec_from_file_location(
        "synthetic_survey", Path(__file__).parent / "synthetic_survey.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.survey_config(path)


def _parser():
    from astrounsup.cli._common import HelpFormatter  # each option's default shown

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=HelpFormatter)  # fmt: skip
    parser.add_argument("--data", default=None,
                        help="a store, a folder or glob of FITS cutouts, or a catalog with a "
                             "file column (default: the built-in survey)")  # fmt: skip
    parser.add_argument("--catalog", type=Path, default=None,
                        help="catalog of the FITS cutouts (ids, RA/Dec, labels)")  # fmt: skip
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
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="lens-search TOML")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: the config's output.directory)")  # fmt: skip
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
    parser.add_argument("--overwrite", action="store_true",
                        help="replace what --out holds: a run on other data")  # fmt: skip
    return parser


def _cluster_labels(cluster, args, *, own_data):
    """The cluster section with the labels the command line chose."""
    cluster = dict(cluster)
    if own_data or args.labels or args.known_lenses:
        # The config's labels are the built-in survey's (its truth or its list of known
        # lenses); the command line names yours.
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
        if isinstance(known, str):  # a path of the config: from the repository root
            cluster["known_positives"] = str(ROOT / known)
    return cluster


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    if args.labels and args.known_lenses:
        parser.error("--labels and --known-lenses are two label regimes; give one of them")
    if args.labeled_fraction is not None and not 0 < args.labeled_fraction <= 1:
        parser.error(f"--labeled-fraction must be in (0, 1]; got {args.labeled_fraction}")
    if args.positive is not None and not args.labels:
        parser.error("--positive names the lens label of --labels; give --labels")
    if args.catalog and not args.data:
        parser.error("--catalog describes the FITS cutouts of --data; give --data")
    from astrounsup.io import StoreError
    from astrounsup.pipeline import open_or_ingest, run_lens_search

    try:
        with open(args.config, "rb") as f:
            cfg = tomllib.load(f)
        survey_section = cfg.pop("survey", None)
        output = cfg.pop("output", {})
        out = args.out or ROOT / output.get("directory", "catalogs/lens_search")
        cfg["cluster"] = _cluster_labels(cfg.get("cluster", {}), args, own_data=bool(args.data))
        if args.k is not None:
            cfg["cluster"]["k"] = args.k
        if args.batch_size is not None:
            model = cfg.setdefault("model", {}).setdefault("config", {})
            model.setdefault("training", {})["batch_size"] = args.batch_size
        if args.data:
            store, report = open_or_ingest(args.data, store=Path(out) / "cutouts.h5",
                                           catalog=args.catalog)  # fmt: skip
            if report is not None:
                resumed = f" (resumed after {report.resumed_from})" if report.resumed_from else ""
                print(f"ingested {report.n_written} cutouts into {report.store}{resumed}; "
                      f"{report.n_rejected} rejected (listed in {report.rejects})")  # fmt: skip
            print(f"using the store {store}")
        else:
            if survey_section is None:
                parser.error(f"{args.config}: no [survey] section; name your data with --data")
            survey, survey_dir = _survey_config(ROOT / survey_section["config"])
            if "fits" in survey_section:  # the search itself reads only the store
                survey["fits"] = bool(survey_section["fits"])
            store = survey_dir / "cutouts.h5"
            print(f"using the survey {store}" if store.exists() else f"simulating {store}")
            cfg["survey"] = survey
        run_lens_search(
            store,
            out,
            cfg,
            steps=args.steps,
            fresh=args.fresh,
            vetted=args.vetted,
            any_run=args.vetted_any_run,
            overwrite=args.overwrite,
        )
    except (ValueError, TypeError, OSError, KeyError, StoreError) as err:
        hint = ""
        if str(err).startswith("init: the shipped encoder"):
            hint = "; --config pipelines/configs/lens_search_full.toml trains one from scratch"
        print(f"lens_search.py: error: {err}{hint}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
