"""Benchmark: the README main job step by step, its time and the quality it reaches.

    python bench/main_job.py [--workdir DIR] [--config pipelines/configs/lens_search.toml]
                             [--n N] [--steps N]
    python bench/main_job.py --config pipelines/configs/lens_search_full.toml   # eval/'s

Runs what ``python pipelines/lens_search.py`` runs on the built-in survey (its TOML configs;
:func:`astrounsup.pipeline.make_survey`, then :func:`astrounsup.pipeline.run_lens_search`
with nothing reused) in ``--workdir`` (default: a temporary folder) and prints the seconds
of every step (survey, train, embed, features, cluster, anomalies, report; recon_train
and recon_embed with a recon_recipe) and the total, then the quality on the survey's
truth, on the objects whose labels the run did not use: the lenses among the first 100 of
the lens ranking (and how many there are to find) and the lens score's AUROC (with labels
of both classes also the call's accuracy and completeness, and the named k-means
clusters' accuracy beside them), and the anomaly ranking's AUROC and precision in the top
1% against ``is_anomaly``. When the config's ``known_positives`` names a file, the run
uses the list of known lenses its own survey wrote. Target: the whole job in <= 240 s on
2 CPU cores; exits 1 if it is missed.
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
    if isinstance(cfg.get("cluster", {}).get("known_positives"), str):
        # The config names the built-in survey's list of known lenses: this run's own.
        cfg["cluster"]["known_positives"] = str(paths["known_lenses"])
    done = run_lens_search(paths["store"], workdir / "lens_search", cfg, steps=steps,
                           progress=False, log=None, fresh=True)  # fmt: skip
    timings |= done["timings"]
    total = time.perf_counter() - t0
    m = done["metrics"] or {}
    clusters = QTable.read(done["cluster"]["clusters"])
    anomalies = QTable.read(done["anomalies"]["anomalies"])
    truth = np.asarray(anomalies["is_anomaly"], bool)
    score = np.asarray(anomalies["anomaly_score"], float)
    top = np.argsort(-score)[: max(1, len(score) // 100)]
    quality = {}
    if "accuracy" in m:  # labels of both classes: the call is measured on the held-out ones
        quality = {
            "call accuracy": m.get("accuracy"), "call completeness": m.get("completeness"),
            "named clusters' call accuracy": m.get("cluster_call_accuracy"),
        }  # fmt: skip
    quality |= lens_ranking_quality(clusters)
    quality |= {
        "anomaly AUROC": float(roc_auc_score(truth, score)),
        "anomaly precision top 1%": float(truth[top].mean()),
    }
    return timings, total, quality


def lens_ranking_quality(clusters):
    """The lens ranking on the objects whose labels were not used: the lenses among the
    first 100 (and how many there were to find) and the score's AUROC."""
    from sklearn.metrics import roc_auc_score

    held = ~np.asarray(clusters["labeled"], bool)
    truth = np.asarray(clusters["is_lens"], bool)[held]
    rank = np.asarray(clusters["lens_rank"], float)[held]
    score = np.asarray(clusters["lens_score"], float)[held]
    first = np.argsort(rank, kind="stable")[:100]
    return {
        "lenses in the first 100": float(truth[first].sum()),
        "lenses to find": float(truth.sum()),
        "lens score AUROC": float(roc_auc_score(truth, score)),
    }


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
        print(f"  {name:30s} {'-' if value is None else f'{value:.3f}'}")
    return 0 if total <= TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
