"""Benchmark: the README main job step by step, its time and the quality it reaches.

    python bench/main_job.py [--workdir DIR] [--config pipelines/configs/lens_search.toml]
                             [--n N] [--steps N]
    python bench/main_job.py --config pipelines/configs/lens_search_full.toml   # eval/'s

Runs what ``python pipelines/lens_search.py`` runs on the built-in survey (its TOML configs;
:func:`astrounsup.pipeline.make_survey`, then :func:`astrounsup.pipeline.run_lens_search`
with nothing reused) in ``--workdir`` (default: a temporary folder) and prints the seconds
of every step (survey, train, embed, features, cluster, anomalies, report; recon_train
and recon_embed with a recon_recipe) and the total, then the quality on the survey's
truth: the call's accuracy and completeness (each object's calibrated score; the named
k-means clusters' accuracy beside it) and the per-object score's AUROC on the 90% of labels
not used, and the anomaly ranking's AUROC and precision in the top 1% against
``is_anomaly``. Target: the whole job in <= 240 s on 2 CPU cores; exits 1 if it is missed.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 240.0


def _pipeline_module(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "pipelines" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(workdir, config_path, *, n=None, steps=None):
    from astropy.table import QTable
    from sklearn.metrics import roc_auc_score

    from astrounsup.pipeline import make_survey, run_lens_search

    with open(config_path, "rb") as f:
        cfg = tomllib.load(f)
    survey_section = cfg.pop("survey")
    cfg.pop("output", None)
    survey_cfg, _ = _pipeline_module("synthetic_survey").survey_config(
        ROOT / survey_section["config"]
    )
    if "fits" in survey_section:
        survey_cfg["fits"] = bool(survey_section["fits"])
    if n is not None:
        survey_cfg["n"] = n
    workdir = Path(workdir)
    t0 = time.perf_counter()
    _, paths = make_survey(survey_cfg, workdir / "survey", progress=False)
    timings = {"survey": time.perf_counter() - t0}
    done = run_lens_search(paths["store"], workdir / "lens_search", cfg, steps=steps,
                           progress=False, log=None, fresh=True)  # fmt: skip
    timings |= done["timings"]
    total = time.perf_counter() - t0
    m = done["metrics"] or {}
    anomalies = QTable.read(done["anomalies"]["anomalies"])
    truth = np.asarray(anomalies["is_anomaly"], bool)
    score = np.asarray(anomalies["anomaly_score"], float)
    top = np.argsort(-score)[: max(1, len(score) // 100)]
    quality = {
        "call accuracy": m.get("accuracy"), "call completeness": m.get("completeness"),
        "named clusters' call accuracy": m.get("cluster_call_accuracy"),
        "lens score AUROC": m.get("score_auroc"),
        "anomaly AUROC": float(roc_auc_score(truth, score)),
        "anomaly precision top 1%": float(truth[top].mean()),
    }  # fmt: skip
    return timings, total, quality


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--config", type=Path,
                        default=ROOT / "pipelines" / "configs" / "lens_search.toml")  # fmt: skip
    parser.add_argument("--n", type=int, default=None, help="override the survey's size")
    parser.add_argument("--steps", type=int, default=None, help="override every model's steps")
    args = parser.parse_args(argv)
    import torch

    if args.workdir:
        timings, total, quality = run(args.workdir, args.config, n=args.n, steps=args.steps)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            timings, total, quality = run(tmp, args.config, n=args.n, steps=args.steps)
    print(f"main job on {torch.get_num_threads()} torch threads; seconds per step:")
    for name, seconds in timings.items():
        print(f"  {name:12s} {seconds:7.1f}")
    print(f"  {'total':12s} {total:7.1f}   target <= {TARGET_S:.0f}")
    for name, value in quality.items():
        print(f"  {name:26s} {'-' if value is None else f'{value:.3f}'}")
    return 0 if total <= TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
