"""Search the built-in synthetic survey for strong lenses and anomalies, without labels.

    python pipelines/lens_search.py [--config pipelines/configs/lens_search.toml]
                                    [--out DIR] [--steps N]

Reads the TOML config and runs :func:`astrounsup.pipeline.run_lens_search`:

1. makes the synthetic survey (``pipelines/configs/synthetic_survey.toml``) unless its
   store exists;
2. trains the configured model on it and embeds every cutout;
3. clusters the latents and names the clusters from a small labeled share of ``is_lens``:
   lens candidates ranked, with accuracy and completeness on the labels not used;
4. ranks every object by anomaly scores. With ``[anomalies] recon_recipe`` (``"vae"`` by
   default) it first trains that autoencoder on the same cutouts and embeds them; the list
   then ranks LOF on those latents together with the reconstruction errors, each relative
   to the objects most alike in the main latents, and LOF of those latents and errors
   together.

Everything lands in the configured directory (``catalogs/lens_search`` by default): the run
(``run/``), ``latents.h5``, ``cluster/`` and ``anomalies/`` catalogs and figures.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tomllib
from pathlib import Path

from astrounsup.pipeline import run_lens_search

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = Path(__file__).parent / "configs" / "lens_search.toml"


def _survey_config(path):
    spec = importlib.util.spec_from_file_location(
        "synthetic_survey", Path(__file__).parent / "synthetic_survey.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.survey_config(path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="lens-search TOML")
    parser.add_argument("--out", type=Path, default=None, help="override output.directory")
    parser.add_argument(
        "--steps", type=int, default=None, help="override the training steps of every model"
    )
    args = parser.parse_args(argv)
    with open(args.config, "rb") as f:
        cfg = tomllib.load(f)
    survey, survey_dir = _survey_config(ROOT / cfg.pop("survey")["config"])
    store = survey_dir / "cutouts.h5"
    print(f"using the existing survey {store}" if store.exists() else f"simulating {store}")
    out = args.out or ROOT / cfg.pop("output")["directory"]
    cfg.pop("output", None)
    run_lens_search(store, out, {"survey": survey, **cfg}, steps=args.steps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
