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
    from astrounsup.cli.search import add_search_options

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=HelpFormatter)  # fmt: skip
    parser.add_argument("--data", default=None,
                        help="a store, a folder or glob of FITS cutouts, or a catalog with a "
                             "file column (default: the built-in survey)")  # fmt: skip
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="lens-search TOML")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: the config's output.directory)")  # fmt: skip
    add_search_options(parser, data_help="--data")
    return parser


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    from astrounsup.cli.search import check_search_options

    problem = check_search_options(args)
    if problem:
        parser.error(problem)
    if args.catalog and not args.data:
        parser.error("--catalog describes the FITS cutouts of --data; give --data")
    from astrounsup.cli.search import open_data, search_config
    from astrounsup.io import StoreError
    from astrounsup.pipeline import run_lens_search

    try:
        with open(args.config, "rb") as f:
            cfg = tomllib.load(f)
        survey_section = cfg.pop("survey", None)
        output = cfg.pop("output", {})
        out = args.out or ROOT / output.get("directory", "catalogs/lens_search")
        cfg = search_config(cfg, args, own_data=bool(args.data), root=ROOT)
        if args.data:
            store = open_data(args.data, args.catalog, out)
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
