"""Evaluation: finding the 1% anomalies of a simulated survey without labels.

    python eval/anomalies.py [--n 10000] [--steps 2000] [--simclr-steps 1500] [--seed 0]
                             [--device cpu] [--save SCORES.npz]
    python eval/anomalies.py --rescore SCORES.npz [--seed S]

Simulates a survey with 1% anomalies (satellite trails, cosmic rays, ghosts, ring galaxies,
bleed trails among lenses, galaxies and stars), trains the default VAE (``astrounsup train
--model vae``) on it without labels, and scores every cutout with each scorer: isolation
forest, local outlier factor and k-NN distance on the latents, reconstruction error (mean,
largest pixel and the window-averaged residual of ``reduction="extended"``), the VAE's
negative ELBO, and combinations of their percentile ranks (mean and maximum of all; maximum
of reconstruction, largest pixel and LOF, with and without the extended residual). With
``--simclr-steps`` (default 1500) it also trains the default SimCLR recipe on the same
cutouts and adds LOF and k-NN distance on its latents, alone and in maximum-rank
combinations with the VAE's scorers; the three reconstruction errors relative to those of
each object's 50 nearest neighbours among the first 16 principal components of the SimCLR
latents, alone and in the maximum-rank combination with LOF; and LOF in the joint space of
those components and the log reconstruction errors, alone and added to that combination
(``context_model_scores``: what ``astrounsup anomalies --recon --context`` combines).
Prints AUROC and the precision among the top 1% of each; the target is AUROC >= 0.95
and top-1% precision >= 0.80.
``--save`` keeps every scorer's scores (``names``, ``scores`` of shape (scorers, n)), the
truth (``is_anomaly``, ``kind``), the latents (``z_vae``, ``z_simclr``) and the seed;
``--rescore SCORES.npz [--seed S]`` recomputes every combination and scorer of the SimCLR
latents from such a file without training again (and prints the same table).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from _common import add_device_argument, device_of, embed, surveys, train_recipe
from sklearn.metrics import roc_auc_score

from astrounsup._atomic import atomic_path
from astrounsup.latent import (
    AnomalyScorer,
    combine_ranks,
    context_model_scores,
    negative_elbo,
    reconstruction_error,
)

#: The scorers computed from the trained models; every other row derives from these.
BASE = (
    "iforest", "lof", "knn", "reconstruction", "reconstruction (max pixel)",
    "reconstruction (extended)", "neg_elbo", "lof (SimCLR latents)", "knn (SimCLR latents)",
)  # fmt: skip


def main(argv=None):
    parser = argparse.ArgumentParser(description="anomaly search quality")
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=2000, help="VAE steps of 64")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--simclr-steps",
        type=int,
        default=1500,
        help="also score SimCLR latents (steps of 128; 0: VAE scorers only)",
    )
    add_device_argument(parser)
    parser.add_argument("--save", default=None, help="save scores, truth and latents (.npz)")
    parser.add_argument(
        "--rescore", default=None, help="a --save file: recompute the combinations, no training"
    )
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    if args.rescore:
        base, truth, kinds, z, zs, seed = _load(args.rescore, args.seed)
    else:
        base, truth, kinds, z, zs = _train_and_score(args)
        seed = args.seed
    scores = _derived(base, zs, seed)
    _report(scores, truth, kinds)
    print(f"runtime {time.perf_counter() - t0:.0f} s")
    if args.save:
        with atomic_path(args.save) as tmp, open(tmp, "wb") as f:
            np.savez(
                f,
                names=np.array(list(scores)),
                scores=np.stack([np.asarray(v, dtype=np.float64) for v in scores.values()]),
                is_anomaly=truth,
                kind=kinds.astype(str),
                z_vae=z,
                z_simclr=np.empty((len(truth), 0)) if zs is None else zs,
                seed=seed,
            )
    return 0


def _train_and_score(args):
    """Simulate, train the VAE (and SimCLR) and compute the base scorers."""
    device = device_of(args.device)
    survey, _ = surveys(args.n, 10, seed=args.seed, anomaly_fraction=0.01)
    truth = np.asarray(survey.table["is_anomaly"])
    print(f"{args.n} cutouts, {truth.sum()} anomalies: {sorted(set(survey.table['kind'][truth]))}")
    trained, t_train = train_recipe(
        "vae", survey, steps=args.steps, batch_size=args.batch_size, seed=args.seed, device=device
    )
    print(f"vae: {args.steps} steps of {args.batch_size} in {t_train:.0f} s")
    z = embed(trained, survey, device)
    model, data = trained.model, trained.dataset(survey.images, table=survey.table)
    base = {
        m: AnomalyScorer(m, random_state=args.seed).fit_score(z) for m in ("iforest", "lof", "knn")
    }
    base["reconstruction"] = reconstruction_error(model, data, device=device)
    base["reconstruction (max pixel)"] = reconstruction_error(
        model, data, device=device, reduction="max"
    )
    base["reconstruction (extended)"] = reconstruction_error(
        model, data, device=device, reduction="extended"
    )
    base["neg_elbo"] = negative_elbo(model, data, device=device)
    zs = None
    if args.simclr_steps:
        # Contrastive latents, as `astrounsup anomalies` scores an embedded SimCLR run.
        simclr, t_simclr = train_recipe(
            "simclr", survey, steps=args.simclr_steps, batch_size=128, seed=args.seed,
            device=device,
        )  # fmt: skip
        print(f"simclr: {args.simclr_steps} steps of 128 in {t_simclr:.0f} s")
        zs = embed(simclr, survey, device)
        for m in ("lof", "knn"):
            base[f"{m} (SimCLR latents)"] = AnomalyScorer(m).fit_score(zs)
    return base, truth, np.asarray(survey.table["kind"]), z, zs


def _load(path, seed):
    """The base scorers, truth, latents and seed of a ``--save`` file (files written before
    the seed was saved take ``seed``, the ``--seed`` of the run that wrote them)."""
    with np.load(path) as f:
        saved = dict(zip(f["names"], f["scores"], strict=True))
        base = {k: saved[k] for k in BASE if k in saved}
        zs = f["z_simclr"] if f["z_simclr"].shape[1] else None
        stored = "seed" in f
        seed = int(f["seed"]) if stored else seed
        out = base, f["is_anomaly"], f["kind"], f["z_vae"], zs, seed
    print(
        f"{path}: {len(out[1])} cutouts, {out[1].sum()} anomalies, seed {seed} "
        f"({'saved' if stored else 'from --seed'})"
    )
    return out


def _derived(base, zs, seed):
    """Every row of the table: the base scorers and their combinations."""
    single = {k: v for k, v in base.items() if "SimCLR" not in k}
    scores = dict(single)
    scores["combined (mean rank)"] = combine_ranks(single)
    scores["combined (max rank)"] = combine_ranks(single, how="max")
    trio = ("reconstruction", "reconstruction (max pixel)", "lof")
    scores["max rank: recon, max pixel, lof"] = combine_ranks(
        {k: single[k] for k in trio}, how="max"
    )
    quartet = (*trio, "reconstruction (extended)")
    scores["max rank: recon, max px, ext, lof"] = combine_ranks(
        {k: single[k] for k in quartet}, how="max"
    )
    if zs is None:
        return scores
    for m in ("lof", "knn"):
        scores[f"{m} (SimCLR latents)"] = base[f"{m} (SimCLR latents)"]
    pick = {k: single[k] for k in trio[:2]} | {"knn_simclr": scores["knn (SimCLR latents)"]}
    scores["max rank: recon, max pixel, knn-S"] = combine_ranks(pick, how="max")
    pick["lof"] = single["lof"]
    scores["max rank: recon, max px, lof, knn-S"] = combine_ranks(pick, how="max")
    # The reconstruction errors judged against the 50 objects most alike among the first
    # 16 principal components of the SimCLR latents, and LOF of those components and the
    # log errors together: `astrounsup anomalies --recon --context`'s scores.
    errors = {
        "chi2": single["reconstruction"],
        "chi2_max": single["reconstruction (max pixel)"],
        "chi2_extended": single["reconstruction (extended)"],
    }
    ctx = context_model_scores(errors, zs, n_neighbors=50, n_components=16, seed=seed)
    rel = {
        "recon": ctx["chi2_context"],
        "max pixel": ctx["chi2_max_context"],
        "extended": ctx["chi2_extended_context"],
    }
    for k, v in rel.items():
        scores[f"{k} vs SimCLR neighbours"] = v
    scores["max rank: ctx recon, px, ext; lof"] = combine_ranks(
        rel | {"lof": single["lof"]}, how="max"
    )
    scores["lof (SimCLR components, log recon)"] = ctx["context_lof"]
    scores["max rank: ctx recon, px, ext; lof; lof-joint"] = combine_ranks(
        rel | {"lof": single["lof"], "joint": ctx["context_lof"]}, how="max"
    )
    return scores


def _report(scores, truth, kinds):
    """AUROC and top-1% precision of every scorer, and the best one against the target."""
    top = max(1, round(0.01 * len(truth)))
    best = None
    for name, s in scores.items():
        auc = roc_auc_score(truth, s)
        order = np.argsort(-s, kind="stable")[:top]
        precision = truth[order].mean()
        found = ", ".join(f"{k} {np.sum(kinds[order] == k)}" for k in np.unique(kinds[order]))
        print(f"{name:44s} AUROC {auc:.3f}  top-1% ({top}) precision {precision:.3f}  [{found}]")
        # Best: the most precise top 1% among scorers with AUROC >= 0.95, else the best AUROC.
        key = (auc >= 0.95, precision if auc >= 0.95 else auc)
        if best is None or key > best[3]:
            best = (name, auc, precision, key)
    met = best[1] >= 0.95 and best[2] >= 0.80
    print(
        f"best scorer {best[0]}: AUROC {best[1]:.3f}, top-1% precision {best[2]:.3f}; target "
        f"AUROC >= 0.95 and precision >= 0.80 -> {'met' if met else 'NOT met'}"
    )


if __name__ == "__main__":
    sys.exit(main())
