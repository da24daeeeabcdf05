"""Search the built-in synthetic survey for strong lenses and anomalies, without labels.

    python pipelines/lens_search.py [--config pipelines/configs/lens_search.toml]
                                    [--out DIR] [--steps N]

1. makes the synthetic survey (``pipelines/synthetic_survey.py``) unless its store exists;
2. trains the configured model on it (``astrounsup train``);
3. embeds every cutout (``astrounsup embed``);
4. clusters the latents and names the clusters from a small labelled share of ``is_lens``
   (``astrounsup cluster``): lens candidates ranked, with accuracy and completeness on the
   labels not used;
5. ranks every object by anomaly scores (``astrounsup anomalies``). With
   ``[anomalies] recon_recipe`` (``"vae"`` by default) it first trains that autoencoder on
   the same cutouts (``recon_run/``) and embeds them (``recon_latents.h5``); the list then
   ranks LOF on those latents together with the reconstruction errors, each relative to
   the objects most alike in the main latents, and LOF of those latents and errors
   together (``--recon --context``): the best scorer of ``eval/anomalies.py``.

Everything lands in the configured directory (``catalogs/lens_search`` by default): the run
(``run/``), ``latents.h5``, ``cluster/`` and ``anomalies/`` catalogs and figures.
"""

from __future__ import annotations

import argparse
import sys
import time
import tomllib
from pathlib import Path

from astrounsup.cli import main as astrounsup

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = Path(__file__).parent / "configs" / "lens_search.toml"


def _toml_lines(section, values):
    lines = [f"[{section}]"]
    for key, value in values.items():
        lines.append(f"{key} = {value!r}".replace("'", '"'))
    return lines


def _synthetic_survey():
    """The sibling pipeline script, loaded as a module."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "synthetic_survey", Path(__file__).parent / "synthetic_survey.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _step(name, argv):
    print(f"\n== {name}: astrounsup {' '.join(argv)}", flush=True)
    code = astrounsup(argv)
    if code != 0:
        msg = f"step {name!r} failed with exit status {code}"
        raise SystemExit(msg)


def _train_and_embed(prefix, store, out, recipe, steps, config):
    """Train ``recipe`` on the store (``{prefix}run/``), embed every cutout
    (``{prefix}latents.h5``) and return the latents path."""
    sections = {k: dict(v) for k, v in config.items()}
    training = sections.setdefault("training", {})
    # A short run (--steps) keeps its warm-up within the run.
    training["warmup_steps"] = min(training.get("warmup_steps", 0), steps // 5)
    train_config = out / f"{prefix}train.toml"
    lines = []
    for section, values in sections.items():
        lines += _toml_lines(section, values)
    train_config.write_text("\n".join(lines) + "\n")
    run = out / f"{prefix}run"
    _step(
        f"{prefix}train",
        ["train", "--data", str(store), "--model", recipe, "--config", str(train_config),
         "--out", str(run), "--steps", str(steps), "--quiet"],
    )  # fmt: skip
    latents = out / f"{prefix}latents.h5"
    _step(f"{prefix}embed", ["embed", "--checkpoint", str(run / "last.pt"), "--data",
                             str(store), "--out", str(latents)])  # fmt: skip
    return latents


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--out", type=Path, default=None, help="override output.directory")
    parser.add_argument(
        "--steps", type=int, default=None, help="override model.steps (and anomalies.recon_steps)"
    )
    args = parser.parse_args(argv)
    with open(args.config, "rb") as f:
        cfg = tomllib.load(f)
    t0 = time.perf_counter()
    out = args.out or ROOT / cfg["output"]["directory"]
    out.mkdir(parents=True, exist_ok=True)

    survey_cfg_path = ROOT / cfg["survey"]["config"]
    with open(survey_cfg_path, "rb") as f:
        survey_dir = ROOT / tomllib.load(f)["output"]["directory"]
    store = survey_dir / "cutouts.h5"
    if not store.exists():
        _synthetic_survey().main(["--config", str(survey_cfg_path), "--out", str(survey_dir)])
    else:
        print(f"using the existing survey {store}")

    model = cfg["model"]
    latents = _train_and_embed(
        "", store, out, model["recipe"], args.steps or model["steps"], model.get("config", {})
    )
    cl = cfg["cluster"]
    reduce = []
    if cl.get("reduce"):
        reduce = ["--reduce", cl["reduce"], "--n-components", str(cl["n_components"])]
    _step(
        "cluster",
        ["cluster", str(latents), "--method", cl["method"], "--k", str(cl["k"]), *reduce,
         "--labels-column", cl["labels_column"], "--labelled-fraction",
         str(cl["labelled_fraction"]), "--seed", str(cl["seed"]), "--out",
         str(out / "cluster"), "--overwrite"],
    )  # fmt: skip
    an = cfg["anomalies"]
    scored, recon = latents, []
    if an.get("recon_recipe"):
        steps = args.steps or an["recon_steps"]
        config = an.get("recon_config", {})
        scored = _train_and_embed("recon_", store, out, an["recon_recipe"], steps, config)
        recon = ["--recon", "--context", str(latents)]
        if "context_neighbors" in an:
            recon += ["--context-neighbors", str(an["context_neighbors"])]
    _step(
        "anomalies",
        ["anomalies", str(scored), "--methods", ",".join(an["methods"]), *recon, "--seed",
         str(an["seed"]), "--out", str(out / "anomalies"), "--overwrite"],
    )  # fmt: skip
    print(f"\ndone in {time.perf_counter() - t0:.0f} s; outputs in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
