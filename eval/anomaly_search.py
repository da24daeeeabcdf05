"""Evaluation: the anomaly step of the lens search on a survey with 1% anomalies.

    python eval/anomaly_search.py --survey ours|lenstronomy [--n 15000] [--seed 0]
                                  [--steps 400] [--workdir DIR] [--config TOML]
                                  [--rounds 3] [--grade 30] [--learning "A;B"]
                                  [--record RUNS.jsonl]

The survey and the main (SimCLR) latents are those of ``eval/rare_lenses.py`` (1% lenses,
1% anomalies: satellite trails, cosmic rays, ghosts, ring galaxies, bleed trails; kept in
the workdir as ``<survey>_run<seed>/latents.h5`` and trained there when missing; with
``--config``, those of that lens-search config's model). A VAE with
the reconstruction settings the lens search used before the detectors (250 steps of 64,
lr 0.002, 50 warm-up steps) is trained beside it (``<survey>_vae<seed>``) when missing.
Every row runs :func:`astrounsup.pipeline.score_anomalies`, the lens search's anomaly step:

* ``VAE in context, max rank``: LOF on the VAE latents, the VAE's reconstruction errors
  and ELBO judged against look-alikes in the SimCLR latents, the largest percentile rank
  (the lens search's anomaly step before the detectors);
* ``VAE in context + detectors, tail``: the same with the four pixel detectors
  (:data:`astrounsup.features.DETECTORS`), each scorer scaled to its own top per cent;
* ``LOF + detectors, tail`` (the lens search's default): LOF on the SimCLR latents and the
  detectors, no second model;
* ``detectors alone, tail``: no model at all.

For each: AUROC of the anomaly score, precision of the top 1% and the share of each kind
of anomaly in the top 3%. Then, on the default row, ``--rounds`` rounds of vetting: the
top ``--grade`` ungraded objects are graded from the truth (``anomaly`` or ``not``) and
every object is ranked again from the step's scores and all grades so far
(:func:`astrounsup.latent.rank_with_grades`, what the anomaly step does with grades: the
graded anomalies first, the graded ``not`` last; ``--learning`` adds the rules of
:data:`LEARNING` tried beside it: scorer weights learnt from the grades, and grading half
of each round from each scorer's own top);
reported per round: precision of the top 1% (graded anomalies first) and of the next 100
ungraded objects before and after. Targets: AUROC >= 0.95, top-1% precision >= 0.70, every
kind >= 50% in the top 3%; after 3 rounds of 30 grades, top-1% precision >= 0.85.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from pipeline_surveys import make_store
from rare_lenses import kept_latents
from sklearn.metrics import roc_auc_score

#: The VAE of the lens search's anomaly step before the detectors.
RECON = {"recipe": "vae", "steps": 250,
         "config": {"training": {"batch_size": 64, "lr": 0.002, "warmup_steps": 50}}}  # fmt: skip
#: Detectors and combination of each row, with whether the VAE is used.
ROWS = {
    "VAE in context, max rank": {"vae": True, "detectors": [], "combine": "max"},
    "VAE in context + detectors, tail": {"vae": True, "detectors": None, "combine": "tail"},
    "LOF + detectors, tail": {"vae": False, "detectors": None, "combine": "tail"},
    "detectors alone, tail": {"vae": False, "detectors": None, "combine": "tail",
                              "methods": []},
}  # fmt: skip


def vae_latents(store, survey, seed, workdir):
    """The VAE run of ``seed`` beside the main one: (checkpoint, latents, table)."""
    import copy

    from astrounsup.latent import read_latents, write_latents
    from astrounsup.pipeline import embed_latents, train_model

    folder = Path(workdir) / f"{survey}_vae{seed}"
    kept = folder / "latents.h5"
    if not kept.exists():
        cfg = copy.deepcopy(RECON)
        cfg["config"]["training"]["seed"] = seed
        trained = train_model(store, cfg, out=folder, progress=False)
        latents, table = embed_latents(trained, store, progress=False)
        write_latents(kept, latents, table)
    latents, table = read_latents(kept)[:2]
    return folder / "last.pt", latents, table


def figures(result, table):
    """AUROC, top-1% precision and each kind's share in the top 3% of one ranking."""
    from astropy.table import join

    cat = result.tables["anomalies"]
    truth = join(cat["object_id", "anomaly_rank", "anomaly_score"],
                 table["object_id", "is_anomaly", "kind"], keys="object_id",
                 metadata_conflicts="silent")  # fmt: skip
    anomaly = np.asarray(truth["is_anomaly"], bool)
    rank = np.asarray(truth["anomaly_rank"])
    score = np.nan_to_num(np.asarray(truth["anomaly_score"], float), nan=-np.inf)
    top = max(1, round(0.01 * len(rank)))
    kinds = np.asarray(truth["kind"]).astype(str)
    missed = anomaly & (rank > top)
    return {
        "auroc": float(roc_auc_score(anomaly, np.where(np.isfinite(score), score, -1e300))),
        "precision_top1pct": float(anomaly[rank <= top].mean()),
        # The anomalies outside the top 1%: how many of each kind, and their ranks.
        "missed_by_kind": {
            str(k): int(np.sum(missed & (kinds == k))) for k in sorted(set(kinds[anomaly]))
        },
        "missed_ranks": [int(rank[missed].min()), int(rank[missed].max())] * bool(missed.any()),
        "top3pct_by_kind": {
            str(k): float(np.mean(rank[kinds == k] <= 3 * top))
            for k in sorted(set(kinds[anomaly]))
        },
    }


DEFAULT_ROW = "LOF + detectors, tail"


def run(survey, n, seed, workdir, *, steps=None, rounds=3, per_round=30, rows=None,
        config=None, learning=("graded only",)):  # fmt: skip
    from astrounsup.pipeline import ANOMALY_DEFAULTS, score_anomalies

    store = make_store(survey, n, workdir, seed=100, lens_fraction=0.01)
    latents, table = kept_latents(survey, n, seed, workdir, steps=steps, config=config)
    if set(learning) - set(LEARNING):
        raise SystemExit(f"--learning: unknown {sorted(set(learning) - set(LEARNING))}; "
                         f"choose among {list(LEARNING)}")  # fmt: skip
    unknown = sorted(set(rows or ()) - set(ROWS))
    if unknown:
        raise SystemExit(f"--rows: unknown rows {unknown}; choose among {list(ROWS)}")
    chosen = {k: v for k, v in ROWS.items() if rows is None or k in rows}
    t0 = time.perf_counter()
    if any(row["vae"] for row in chosen.values()):
        checkpoint, vae, vae_table = vae_latents(store, survey, seed, workdir)
    t_vae = time.perf_counter() - t0
    out = {"survey": survey, "n": n, "seed": seed, "vae_s": round(t_vae, 1), "rows": {},
           "config": str(config or "lens_search_full.toml")}  # fmt: skip
    for name, row in chosen.items():
        t1 = time.perf_counter()
        cfg = {"seed": seed, "gallery": 0, "combine": row["combine"],
               "methods": row.get("methods", ["lof"]),
               "detectors": ANOMALY_DEFAULTS["detectors"] if row["detectors"] is None
               else row["detectors"]}  # fmt: skip
        if row["vae"]:
            result = score_anomalies(vae, vae_table, cfg | {"recon": True}, model=checkpoint,
                                     data=store, context=(latents, table))  # fmt: skip
        else:
            result = score_anomalies(latents, table, cfg, data=store)
        out["rows"][name] = figures(result, table) | {
            "runtime_s": round(time.perf_counter() - t1, 1)
        }
        print(f"  {name}: {out['rows'][name]}", flush=True)
        if name == DEFAULT_ROW and rounds:
            out["vetting"] = {how: vetting(result, table, rounds=rounds, per_round=per_round,
                                           learning=how)
                              for how in learning}  # fmt: skip
    return out


#: How the vetting rounds learn from the grades: ``graded only`` is the anomaly step's own
#: re-ranking (:func:`astrounsup.latent.rank_with_grades`); the others were tried beside it.
LEARNING = {
    "graded only": {"weights": False, "explore": False},
    # Each scorer's tail-scaled score weighted by the precision of the graded objects it
    # put highest (a Beta prior of 5 grades at the overall precision), the largest taken.
    "scorer weights": {"weights": True, "explore": False},
    # The same, half of each round graded from the scorers' own tops in turn, so that a
    # scorer whose outliers are never at the top of the list is graded too.
    "scorer weights, explore": {"weights": True, "explore": True},
}
#: Prior strength (in grades) of :data:`LEARNING`'s scorer weights.
PRIOR_GRADES = 5


def _scorer_weighted(scaled, graded, anomaly, prior=PRIOR_GRADES):
    """Each scorer's weight from the grades of the objects it put highest."""
    y = anomaly[graded]
    mean = float(np.clip(y.mean(), 0.05, 0.95))
    top = np.nanargmax(np.nan_to_num(scaled[graded], nan=-np.inf), 1)
    w = np.array([(y[top == j].sum() + prior * mean) / ((top == j).sum() + prior) / mean
                  for j in range(scaled.shape[1])])  # fmt: skip
    return np.max(np.where(np.isnan(scaled), -np.inf, scaled * w), 1)


def vetting(result, table, *, rounds, per_round, learning="graded only"):
    """Rounds of grading ``per_round`` ungraded objects from the truth (the top of the list,
    or with ``explore`` half of them from each scorer's own top in turn) and ranking again
    as :data:`LEARNING` says: precision of the top 1% and of the next 100 ungraded, before
    and after each."""
    from astropy.table import join

    from astrounsup.latent import rank_with_grades, tail_scaled

    how = LEARNING[learning]
    cat = result.tables["anomalies"]
    known = table["object_id", "is_anomaly"]
    known.rename_column("is_anomaly", "_truth")
    truth = join(cat, known, keys="object_id", metadata_conflicts="silent")
    anomaly = np.asarray(truth["_truth"], bool)
    scores = {k: np.asarray(truth[f"score_{k}"], float) for k in result.summary["scorers"]}
    flagged = ~np.isfinite(np.asarray(truth["anomaly_score"], float))
    scaled = np.full((len(truth), len(scores)), np.nan)
    for j, v in enumerate(scores.values()):
        scaled[~flagged, j] = tail_scaled(v[~flagged])
    rank = np.asarray(truth["anomaly_rank"])
    grades = np.full(len(truth), "", dtype=object)
    top = max(1, round(0.01 * len(rank)))

    def state(rank):
        ungraded = np.nonzero(grades == "")[0]
        nxt = ungraded[np.argsort(rank[ungraded])][:100]
        return float(anomaly[rank <= top].mean()), float(anomaly[nxt].mean())

    out = []
    for k in range(rounds):
        before = state(rank)
        ungraded = np.nonzero((grades == "") & ~flagged)[0]
        n_list = per_round // 2 if how["explore"] else per_round
        chosen = list(ungraded[np.argsort(rank[ungraded])][:n_list])
        orders = [ungraded[np.argsort(-scaled[ungraded, j])] for j in range(scaled.shape[1])]
        j = 0
        while len(chosen) < per_round:
            pick = next(i for i in orders[j % len(orders)] if i not in chosen)
            chosen.append(pick)
            j += 1
        chosen = np.asarray(chosen)
        grades[chosen] = np.where(anomaly[chosen], "anomaly", "not")
        if how["weights"]:
            combined = _scorer_weighted(scaled, np.nonzero(grades != "")[0], anomaly)
            group = np.where(flagged, 3, np.where(grades == "anomaly", 0,
                                                  np.where(grades == "not", 2, 1)))  # fmt: skip
            order = np.lexsort((np.arange(len(rank)), -combined, group))
            rank = np.empty(len(rank), dtype=np.int64)
            rank[order] = np.arange(1, len(rank) + 1)
        else:
            _, rank = rank_with_grades(scores, grades.astype(str), flagged=flagged)
        after = state(rank)
        out.append({"round": k + 1, "n_graded": int((grades != "").sum()),
                    "n_graded_anomalies": int((grades == "anomaly").sum()),
                    "top1pct_before": before[0], "top1pct_after": after[0],
                    "next100_before": before[1], "next100_after": after[1]})  # fmt: skip
        print(f"  vetting ({learning}) round {k + 1}: {out[-1]}", flush=True)
    return out


def report(entry):
    rows = entry["rows"]
    kinds = sorted(next(iter(rows.values()))["top3pct_by_kind"])
    print(f"\n{entry['survey']}: {entry['n']} cutouts, 1% anomalies, seed {entry['seed']}")
    print(f"| scorers | AUROC | top-1% precision | {' | '.join(kinds)} (share in top 3%) |")
    print("|---|---|---|" + "---|" * len(kinds))
    for name, f in rows.items():
        shares = " | ".join(f"{f['top3pct_by_kind'][k]:.2f}" for k in kinds)
        print(f"| {name} | {f['auroc']:.3f} | {f['precision_top1pct']:.2f} | {shares} |")
    for name, f in rows.items():
        if "missed_by_kind" in f:
            print(f"{name}: anomalies outside the top 1% by kind {f['missed_by_kind']}, at "
                  f"ranks {f['missed_ranks']}")  # fmt: skip
    vetted = entry.get("vetting") or {}
    if isinstance(vetted, list):  # records written before the learning rules
        vetted = {"graded only": vetted}
    if vetted:
        print(f"\nvetting ({DEFAULT_ROW}): grades from the truth, ranked again after each round")
        print("| learning | round | graded (anomalies) | top-1% precision before -> after | "
              "next 100 before -> after |")  # fmt: skip
        print("|---|---|---|---|---|")
        for how, rounds in vetted.items():
            for v in rounds:
                print(f"| {how} | {v['round']} | {v['n_graded']} "
                      f"({v.get('n_graded_anomalies', '?')}) | {v['top1pct_before']:.2f} -> "
                      f"{v['top1pct_after']:.2f} | {v['next100_before']:.2f} -> "
                      f"{v['next100_after']:.2f} |")  # fmt: skip


def main(argv=None):
    parser = argparse.ArgumentParser(description="anomaly step quality at 1% anomalies")
    parser.add_argument("--survey", choices=("ours", "lenstronomy"), default="ours")
    parser.add_argument("--n", type=int, default=15_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="SimCLR steps when the main latents are trained here",
    )
    parser.add_argument("--workdir", default="eval_work/rare")
    parser.add_argument("--rounds", type=int, default=3, help="vetting rounds (0: none)")
    parser.add_argument("--grade", type=int, default=30, help="objects graded per round")
    parser.add_argument(
        "--learning",
        default="graded only",
        help=f"vetting rules, separated by ; (among {list(LEARNING)})",
    )
    parser.add_argument(
        "--rows", default=None, help="row names to run, separated by ; (default: every row)"
    )
    parser.add_argument(
        "--config",
        default=None,
        help="lens-search TOML of the main latents (default: lens_search_full)",
    )
    parser.add_argument("--record", default=None, help="append the figures (JSON lines)")
    args = parser.parse_args(argv)
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    rows = None if args.rows is None else [r.strip() for r in args.rows.split(";")]
    entry = run(
        args.survey,
        args.n,
        args.seed,
        args.workdir,
        steps=args.steps,
        rounds=args.rounds,
        per_round=args.grade,
        rows=rows,
        config=args.config,
        learning=[v.strip() for v in args.learning.split(";")],
    )
    report(entry)
    if args.record:
        with open(args.record, "a") as f:
            f.write(json.dumps(entry) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
