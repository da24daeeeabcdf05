"""Evaluation: lenses at 1% prevalence, from a list of 50 known lenses and nothing else.

    python eval/rare_lenses.py --survey ours|lenstronomy [--n 15000] [--known 50]
                               [--lens-fraction 0.01] [--seeds 0,1,2] [--workdir DIR]
                               [--rescore] [--config TOML] [--record RUNS.jsonl]
    # lenses as rare as in a real survey, embedded with the shipped encoder:
    python eval/rare_lenses.py --survey ours --n 50000 --lens-fraction 0.001 --known 20 \
        --seeds 0 --config pipelines/configs/lens_search.toml

A real survey holds ~1e-3 lenses and a team knows a few dozen of them, but no negatives.
This makes a survey with 1% lenses (``--lens-fraction``, 1% anomalies; ours with the
settings of ``pipelines/configs/synthetic_survey.toml`` otherwise, or the lenstronomy one of
``eval/lenstronomy_survey.py``), trains and embeds with the main job's model settings
(``pipelines/configs/lens_search_full.toml``, or ``--config``, e.g. one whose ``[model]``
starts from the shipped encoder: :func:`astrounsup.pipeline.train_model` and
:func:`astrounsup.pipeline.embed_latents`, as the main job runs them), and clusters with its
cluster settings but ``known_positives`` = the ids of ``--known`` lenses drawn at random
(:func:`astrounsup.pipeline.cluster_latents` with the survey's arc features, as the lens
search scores; positive-unlabeled scoring), once per
training seed. On the objects not in the list it reports the precision and recall of the
top 100 by ``lens_rank``, the AUROC of ``lens_score``, the precision of the top 100 by the
arc score alone (no labels), the estimated share of all
lenses that are known against the truth, and how the probabilities describe the objects
(:func:`calibration`: candidates, lenses expected against the truth, Brier score); each
seed's latents are kept in the workdir
(``<survey>_run<seed>/latents.h5``, ``<survey>_<config name>_run<seed>`` with ``--config``),
and ``--rescore`` scores them again without training.
Target: precision of the top 100 >= 0.5
on both surveys, mean over seeds.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from pipeline_surveys import main_job_config, make_store
from sklearn.metrics import roc_auc_score

TARGET = 0.5
#: The share of lenses in the survey (``--lens-fraction``).
LENS_FRACTION = 0.01


def known_lenses(table, n_known, seed):
    """The ids of ``n_known`` lenses drawn at random (the list a team would have)."""
    lens = np.asarray(table["is_lens"])
    ids = np.asarray(table["object_id"]).astype(str)
    rng = np.random.default_rng(1000 + seed)
    return list(rng.choice(ids[lens], size=min(n_known, int(lens.sum()) - 1), replace=False))


def known_positive_config(cfg, known):
    """The main job's cluster settings with ``known`` as the only labels."""
    dropped = ("labels_column", "labeled_fraction", "positive", "known_positives")
    cluster = {k: v for k, v in cfg["cluster"].items() if k not in dropped}
    return cluster | {"known_positives": list(known)}


def run_dir(workdir, survey, seed, config=None):
    """Where the run of one training seed keeps its model and latents."""
    tag = "" if config is None else f"_{Path(config).stem}"
    return Path(workdir) / f"{survey}{tag}_run{seed}"


def calibration(probability, candidate, truth):
    """How the probabilities of the objects not in the list describe them: ``n_candidates``,
    ``candidate_precision`` (lenses among them), ``expected_lenses`` (sum of probabilities,
    against ``truth.sum()``), ``brier`` and ``n_at_one`` (probabilities of exactly 1)."""
    candidate = np.asarray(candidate, dtype=bool)
    return {
        "n_candidates": int(candidate.sum()),
        "candidate_precision": float(truth[candidate].mean()) if candidate.any() else np.nan,
        "expected_lenses": float(probability.sum()),
        "brier": float(np.mean((probability - truth) ** 2)),
        "n_at_one": int(np.sum(probability >= 1.0)),
    }


def kept_latents(survey, n, seed, workdir, *, n_known=50, steps=None, config=None):
    """The latents of one training seed at 1% lenses, kept in ``workdir``: read when an
    earlier run left them there, else trained and embedded as :func:`run` does."""
    from astrounsup.latent import read_latents

    kept = run_dir(workdir, survey, seed, config) / "latents.h5"
    if not kept.exists():
        run(survey, n, n_known, [seed], workdir, steps=steps, config=config)
    return read_latents(kept)[:2]


def arc_features_of(store, workdir):
    """The store's arc-features catalog (:func:`astrounsup.pipeline.measure_arc_features`),
    kept in ``workdir`` beside it."""
    from astrounsup.io import read_catalog
    from astrounsup.pipeline import measure_arc_features

    path = Path(workdir) / f"{Path(store).stem}_arc_features.ecsv"
    if not path.exists():
        measure_arc_features(store).tables["arc_features"].write(path)
    return read_catalog(path)


def run(survey, n, n_known, seeds, workdir, *, steps=None, rescore=False, config=None,
        lens_fraction=LENS_FRACTION):  # fmt: skip
    from astrounsup.latent import read_latents, write_latents
    from astrounsup.pipeline import cluster_latents, embed_latents, train_model
    from astrounsup.training import short_run_warmup

    t0 = time.perf_counter()
    # Other seeds than the main job's survey: a survey of its own.
    store = make_store(survey, n, workdir, seed=100, lens_fraction=lens_fraction)
    t_survey = time.perf_counter() - t0
    print(f"{survey}: {n} cutouts with {100 * lens_fraction:g}% lenses in {t_survey:.0f} s",
          flush=True)  # fmt: skip
    # The arc features, measured once on the pixels (no training), as the lens search does.
    arcs = arc_features_of(store, workdir)
    runs = []
    for seed in seeds:
        t1 = time.perf_counter()
        cfg = main_job_config(seed, config=config)
        if steps:
            cfg["model"]["steps"] = steps
            # As run_lens_search(steps=...) shortens a run.
            training = cfg["model"]["config"]["training"]
            training["warmup_steps"] = short_run_warmup(training.get("warmup_steps", 0), steps)
        kept = run_dir(workdir, survey, seed, config) / "latents.h5"
        if rescore:
            if not kept.exists():
                raise SystemExit(f"--rescore: no latents {kept} (run with --workdir first)")
            latents, table, _ = read_latents(kept)
        else:
            trained = train_model(store, cfg["model"], out=kept.parent, progress=False)
            latents, table = embed_latents(trained, store, progress=False)
            # Kept in the workdir, so the scoring can be measured again without training.
            write_latents(kept, latents, table)
        lens = np.asarray(table["is_lens"])
        known = known_lenses(table, n_known, seed)
        result = cluster_latents(latents, table, known_positive_config(cfg, known),
                                 arc_features=arcs)  # fmt: skip
        cat = result.tables["clusters"]
        unknown = ~np.asarray(cat["labeled"])
        truth = np.asarray(cat["is_lens"])[unknown]
        rank = np.asarray(cat["lens_rank"])[unknown]
        top = np.argsort(rank)[:100]
        figures = {
            "seed": seed,
            "n_known": len(known),
            "n_unknown_lenses": int(truth.sum()),
            "precision_top100": float(truth[top].mean()),
            "recall_top100": float(truth[top].sum() / truth.sum()),
            "score_auroc": float(roc_auc_score(truth, np.asarray(cat["lens_score"])[unknown])),
            # Without the known lenses: the arc ranking alone.
            "arc_precision_top100": float(
                truth[np.argsort(np.asarray(cat["arc_rank"])[unknown])[:100]].mean()
            ),
            # The probabilities: how many candidates (> threshold), how many lenses they
            # hold, the lenses expected (sum of probabilities) against the truth, the Brier
            # score, and how many objects are scored exactly 1 (no resolution).
            **calibration(
                np.asarray(cat["lens_score"])[unknown],
                np.asarray(cat["lens_candidate"])[unknown],
                truth,
            ),
            "label_frequency": result.summary["metrics"]["label_frequency"],
            "true_label_frequency": len(known) / int(lens.sum()),
            "runtime_s": round(time.perf_counter() - t1, 1),
        }
        runs.append(figures)
        print(
            f"  seed {seed}: top-100 precision {figures['precision_top100']:.2f}, recall "
            f"{figures['recall_top100']:.2f} of {figures['n_unknown_lenses']}; AUROC "
            f"{figures['score_auroc']:.3f}; known share estimated "
            f"{figures['label_frequency']:.2f} (truth {figures['true_label_frequency']:.2f}); "
            f"{figures['n_candidates']} candidates ({figures['candidate_precision']:.2f} "
            f"lenses), expected lenses {figures['expected_lenses']:.0f}, Brier "
            f"{figures['brier']:.4f}, {figures['n_at_one']} scored 1 "
            f"({figures['runtime_s']:.0f} s)",
            flush=True,
        )
    return {"survey": survey, "n": n, "lens_fraction": lens_fraction,
            "survey_s": round(t_survey, 1),
            "runtime_s": round(time.perf_counter() - t0, 1), "runs": runs}  # fmt: skip


def report(entries):
    keys = ("precision_top100", "recall_top100", "score_auroc", "arc_precision_top100",
            "label_frequency", "true_label_frequency", "n_candidates", "candidate_precision",
            "expected_lenses", "n_unknown_lenses", "brier", "n_at_one")  # fmt: skip
    print(f"{'figure (mean over seeds)':26s}" + "".join(f"{e['survey']:>14s}" for e in entries))
    for key in keys:
        line = f"{key:26s}" + "".join(
            f"{np.mean([r.get(key, np.nan) for r in e['runs']]):14.3f}" for e in entries
        )
        if key == "precision_top100":
            line += f"   target >= {TARGET}"
        print(line)
    for e in entries:
        print(f"{e['survey']}: {e['n']} cutouts, seeds {[r['seed'] for r in e['runs']]}, "
              f"survey {e['survey_s']:.0f} s, total {e['runtime_s']:.0f} s")  # fmt: skip
    met = all(np.mean([r["precision_top100"] for r in e["runs"]]) >= TARGET for e in entries)
    return 0 if met else 1


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--survey", choices=("ours", "lenstronomy"))
    parser.add_argument("--n", type=int, default=15000)
    parser.add_argument("--known", type=int, default=50, help="known lenses given")
    parser.add_argument("--lens-fraction", type=float, default=LENS_FRACTION,
                        help="share of lenses (0.001: as rare as in a real survey)")  # fmt: skip
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--steps", type=int, default=None, help="override the main job's steps")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="lens-search TOML (default: lens_search_full.toml)",
    )
    parser.add_argument("--record", type=Path, default=None)
    parser.add_argument("--report", type=Path, default=None)
    parser.add_argument(
        "--rescore", action="store_true",
        help="score the latents an earlier run kept in --workdir again (no training)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.report:
        return report([json.loads(x) for x in args.report.read_text().splitlines() if x])
    if not args.survey:
        parser.error("--survey is required (or --report FILE)")
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.rescore and not args.workdir:
        parser.error("--rescore needs --workdir (the folder of an earlier run)")
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        entry = run(args.survey, args.n, args.known, seeds, args.workdir, steps=args.steps,
                    rescore=args.rescore, config=args.config,
                    lens_fraction=args.lens_fraction)  # fmt: skip
    else:
        with tempfile.TemporaryDirectory() as tmp:
            entry = run(args.survey, args.n, args.known, seeds, tmp, steps=args.steps,
                        config=args.config, lens_fraction=args.lens_fraction)  # fmt: skip
    entry["config"] = str(args.config or "lens_search_full.toml")
    if args.record:
        from lens_clustering import record_run

        record_run(args.record, entry)
    return report([entry])


if __name__ == "__main__":
    sys.exit(main())
