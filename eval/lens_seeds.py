"""Evaluation summary: lens clustering over several training seeds.

    python eval/lens_seeds.py RUNS.jsonl

Reads the runs that ``lens_clustering.py --record RUNS.jsonl`` appended (one per training
seed, with the same settings), prints each seed's mean k-means accuracy and completeness
(over its repeated k-means seeds and label draws) for every feature set, their mean,
standard deviation and range over the training seeds, the Bayesian GMM alike, and the
target (accuracy >= 0.90, completeness >= 0.80) judged on the mean over training seeds.

A single training run is one draw from the training seed's distribution: its accuracy moves
by about +-0.02 from one seed to the next, so the mean over seeds estimates what the method
gives better than any one run. Runs whose settings differ, or two runs of one seed, are an
error: the file names the runs, and the mean would mix different things.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

TARGET_ACCURACY, TARGET_COMPLETENESS = 0.90, 0.80


def load_runs(path):
    """The runs of a ``--record`` file, checked to share their settings and differ in seed."""
    runs = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                runs.append(json.loads(line))
            except json.JSONDecodeError as err:
                msg = f"{path}: line {number} is not JSON ({err})"
                raise SystemExit(msg) from None
    if not runs:
        msg = f"{path}: no runs recorded"
        raise SystemExit(msg)
    first = runs[0]["settings"]
    for run in runs[1:]:
        if run["settings"] != first:
            msg = (
                f"{path}: runs with different settings cannot be averaged: seed "
                f"{runs[0]['seed']} has {first}, seed {run['seed']} has {run['settings']}"
            )
            raise SystemExit(msg)
    seeds = [run["seed"] for run in runs]
    if len(set(seeds)) != len(seeds):
        msg = f"{path}: a training seed is recorded twice: {seeds}"
        raise SystemExit(msg)
    return runs


def summarise(runs):
    """Per feature set: each seed's mean k-means accuracy and completeness, as arrays over
    the runs (in their order)."""
    names = list(runs[0]["kmeans"])
    return {
        name: {
            key: np.array([np.mean(run["kmeans"][name][key]) for run in runs])
            for key in ("accuracy", "completeness")
        }
        for name in names
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description="lens clustering over training seeds")
    parser.add_argument("record", help="JSON-lines file written by lens_clustering.py --record")
    args = parser.parse_args(argv)
    runs = load_runs(args.record)
    seeds = [run["seed"] for run in runs]
    print(f"{len(runs)} training runs, seeds {seeds}; settings {runs[0]['settings']}")
    print("runtime per run (s): " + ", ".join(f"{run['runtime_s']:.0f}" for run in runs))
    table = summarise(runs)
    for name, figures in table.items():
        acc, comp = figures["accuracy"], figures["completeness"]
        per_seed = "  ".join(f"{a:.3f}/{c:.3f}" for a, c in zip(acc, comp, strict=True))
        print(f"{name:28s} k-means accuracy/completeness by seed: {per_seed}")
        sd = acc.std(ddof=1) if len(acc) > 1 else 0.0
        print(
            f"{'':28s} mean over seeds {acc.mean():.3f} (sd {sd:.3f}, "
            f"{acc.min():.3f}-{acc.max():.3f}) / {comp.mean():.3f}"
        )
        gmm = [run["bayes_gmm"].get(name) for run in runs]
        if all(gmm):
            g_acc = np.array([g["accuracy"] for g in gmm])
            g_comp = np.array([g["completeness"] for g in gmm])
            print(
                f"{'':28s} Bayesian GMM mean over seeds {g_acc.mean():.3f} "
                f"({g_acc.min():.3f}-{g_acc.max():.3f}) / {g_comp.mean():.3f}"
            )
    for name, figures in table.items():
        if name.endswith("of pixels"):
            continue
        acc, comp = figures["accuracy"].mean(), figures["completeness"].mean()
        met = acc >= TARGET_ACCURACY and comp >= TARGET_COMPLETENESS
        print(
            f"target ({name} + k-means, mean over {len(runs)} training seeds): accuracy "
            f"{acc:.3f} >= {TARGET_ACCURACY} and completeness {comp:.3f} >= "
            f"{TARGET_COMPLETENESS} -> {'met' if met else 'NOT met'}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
