"""Evaluation: does grading the top candidates and re-ranking find more lenses next?

    python eval/vetting.py --survey ours|lenstronomy [--n 15000] [--seeds 0]
                           [--grade 50] [--next 100] [--rounds 1] [--known 50]
                           [--steps N] --workdir DIR
                           [--record RUNS.jsonl]
    python eval/vetting.py --report RUNS.jsonl

The 1% regime of ``eval/rare_lenses.py`` (a survey with 1% lenses; 50 known lens ids and
nothing else; the main job's model and cluster settings; its latents, kept in the workdir
or trained here; the arc features of the survey): the lens search ranks every object from
the known ids. A person then
grades the top ``--grade`` candidates not yet known; here the truth grades them (``lens``
or ``not``), written as the report's export would write them
(:func:`astrounsup.catalog.grades_table`), and
:func:`astrounsup.pipeline.rerank_candidates` folds the grades in and ranks again, as
``astrounsup rank --vetted`` does. Reported per round, on the objects neither known nor
graded: the precision of the next ``--next`` candidates without re-ranking (ranks
``grade+1 .. grade+next`` of the ranking the grades were made on) and after it (the top
``--next`` of the new ranking), and the AUROC of the lens score before and after.
Issue target: the precision of the next 100 rises.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from pipeline_surveys import main_job_config, make_store
from rare_lenses import arc_features_of, kept_latents, known_lenses, known_positive_config
from sklearn.metrics import roc_auc_score


def _order(cat, excluded):
    """Rows not ``excluded``, best lens rank first."""
    rows = np.flatnonzero(~excluded)
    return rows[np.argsort(np.asarray(cat["lens_rank"])[rows])]


def run(survey, n, seeds, workdir, *, n_grade, n_next, rounds, n_known=50, steps=None):
    from astrounsup.catalog import grades_table
    from astrounsup.pipeline import cluster_latents, rerank_candidates

    out = []
    for seed in seeds:
        t0 = time.perf_counter()
        latents, table = kept_latents(survey, n, seed, workdir, n_known=n_known, steps=steps)
        truth = np.asarray(table["is_lens"])
        ids = np.asarray(table["object_id"]).astype(str)
        known = known_lenses(table, n_known, seed)
        store = make_store(survey, n, workdir, seed=100, lens_fraction=0.01)
        cat = cluster_latents(latents, table,
                              known_positive_config(main_job_config(seed), known),
                              arc_features=arc_features_of(store, workdir))  # fmt: skip
        cat = cat.tables["clusters"]
        excluded = np.isin(ids, known)
        graded_ids, graded = [], []
        for r in range(rounds):
            order = _order(cat, excluded)
            batch = order[:n_grade]
            before = order[n_grade : n_grade + n_next]
            graded_ids += ids[batch].tolist()
            graded += np.where(truth[batch], "lens", "not").tolist()
            excluded[batch] = True
            rest = ~excluded
            auroc_before = roc_auc_score(truth[rest], np.asarray(cat["lens_score"])[rest])
            grades = grades_table(graded_ids, graded, time="2026-12-01T00:00:00")
            cat = rerank_candidates(latents, table, cat, grades).tables["clusters"]
            after = _order(cat, excluded)[:n_next]
            row = {
                "seed": seed, "round": r + 1, "n_graded": len(graded_ids),
                "graded_lenses": int(truth[batch].sum()),
                "precision_graded": float(truth[batch].mean()),
                "precision_next_before": float(truth[before].mean()),
                "precision_next_after": float(truth[after].mean()),
                "auroc_before": float(auroc_before),
                "auroc_after": float(
                    roc_auc_score(truth[rest], np.asarray(cat["lens_score"])[rest])),
                "lenses_left": int(truth[rest].sum()),
            }  # fmt: skip
            out.append(row)
            print(
                f"  seed {seed} round {r + 1}: graded {n_grade} ({row['graded_lenses']} lenses); "
                f"next {n_next}: precision {row['precision_next_before']:.2f} -> "
                f"{row['precision_next_after']:.2f}; AUROC {row['auroc_before']:.3f} -> "
                f"{row['auroc_after']:.3f} ({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
    return {"survey": survey, "n": n, "grade": n_grade, "next": n_next, "runs": out}


def report(entries):
    keys = ("precision_graded", "precision_next_before", "precision_next_after",
            "auroc_before", "auroc_after")  # fmt: skip
    for e in entries:
        rounds = sorted({r["round"] for r in e["runs"]})
        print(f"{e['survey']}: {e['n']} cutouts, grade {e['grade']}, next {e['next']}, "
              f"seeds {sorted({r['seed'] for r in e['runs']})}")  # fmt: skip
        print(f"{'round':8s}" + "".join(f"{k:>23s}" for k in keys))
        for r in rounds:
            rows = [x for x in e["runs"] if x["round"] == r]
            print(f"{r:<8d}" + "".join(f"{np.mean([x[k] for x in rows]):23.3f}" for k in keys))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--survey", choices=("ours", "lenstronomy"))
    parser.add_argument("--n", type=int, default=15000)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--grade", type=int, default=50, help="candidates graded per round")
    parser.add_argument("--next", type=int, default=100, help="candidates looked at next")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--known", type=int, default=50, help="known lenses given")
    parser.add_argument("--steps", type=int, default=None,
                        help="override the main job's steps (when training here)")  # fmt: skip
    parser.add_argument("--workdir", type=Path, required=False)
    parser.add_argument("--record", type=Path, default=None)
    parser.add_argument("--report", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.report:
        return report([json.loads(x) for x in args.report.read_text().splitlines() if x])
    if not args.survey or not args.workdir:
        parser.error("--survey and --workdir are required (or --report FILE)")
    args.workdir.mkdir(parents=True, exist_ok=True)
    entry = run(args.survey, args.n, [int(s) for s in args.seeds.split(",")], args.workdir,
                n_grade=args.grade, n_next=args.next, rounds=args.rounds, n_known=args.known,
                steps=args.steps)  # fmt: skip
    if args.record:
        from lens_clustering import record_run

        record_run(args.record, entry)
    return report([entry])


if __name__ == "__main__":
    sys.exit(main())
