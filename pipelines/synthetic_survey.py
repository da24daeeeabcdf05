"""Make the built-in synthetic survey and print its summary.

    python pipelines/synthetic_survey.py [--config pipelines/configs/synthetic_survey.toml]
                                         [--n N] [--out DIR]

Writes ``cutouts.h5``, ``fits/``, ``truth.ecsv`` and ``montage.png`` into the configured
directory (``catalogs/synthetic_survey`` by default). Later stages of the lens search read
this store.
"""

from __future__ import annotations

import argparse
import sys
import time
import tomllib
from pathlib import Path

from astrounsup.cli import simulate_lenses_to_directory

DEFAULT_CONFIG = Path(__file__).parent / "configs" / "synthetic_survey.toml"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--n", type=int, default=None, help="override survey.n")
    parser.add_argument("--out", type=Path, default=None, help="override output.directory")
    args = parser.parse_args(argv)
    with open(args.config, "rb") as f:
        config = tomllib.load(f)
    survey_cfg = dict(config["survey"])
    if args.n is not None:
        survey_cfg["n"] = args.n
    out = args.out or Path(config["output"]["directory"])
    n, seed = survey_cfg.pop("n"), survey_cfg.pop("seed")
    survey_cfg["bands"] = tuple(survey_cfg["bands"])
    t0 = time.perf_counter()
    survey, paths = simulate_lenses_to_directory(
        out,
        n=n,
        seed=seed,
        fits=config["output"].get("fits", True),
        progress=True,
        **survey_cfg,
    )
    print(survey.summary())
    for name, path in paths.items():
        print(f"  {name:8s} {path}")
    print(f"done in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
