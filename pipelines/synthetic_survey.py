"""Make the built-in synthetic survey and print its summary.

    python pipelines/synthetic_survey.py [--config pipelines/configs/synthetic_survey.toml]
                                         [--n N] [--out DIR]

Writes ``cutouts.h5``, ``fits/``, ``truth.ecsv``, ``montage.png`` and ``known_lenses.txt``
(the ids of the lenses a search starts from) into the configured
directory (``catalogs/synthetic_survey`` by default; relative paths start from the
repository root). The lens search reads this store.
"""

from __future__ import annotations

import argparse
import sys
import time
import tomllib
from pathlib import Path

from astrounsup.pipeline import make_survey

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = Path(__file__).parent / "configs" / "synthetic_survey.toml"


def survey_config(path):
    """The ``[survey]`` table of a survey TOML with ``[output] fits``, and the output folder
    (relative to the repository root)."""
    with open(path, "rb") as f:
        config = tomllib.load(f)
    survey = dict(config["survey"])
    survey["fits"] = config["output"].get("fits", True)
    return survey, ROOT / config["output"]["directory"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="survey TOML")
    parser.add_argument("--n", type=int, default=None, help="override survey.n")
    parser.add_argument("--out", type=Path, default=None, help="override output.directory")
    args = parser.parse_args(argv)
    config, out = survey_config(args.config)
    if args.n is not None:
        config["n"] = args.n
    t0 = time.perf_counter()
    survey, paths = make_survey(config, args.out or out)
    print(survey.summary())
    for name, path in paths.items():
        print(f"  {name:12s} {path}")
    if "known_lenses" in paths:
        print(f"  known lenses: {paths['known_lenses'].read_text().splitlines()[0][2:]}")
    print(f"done in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
