"""Evaluation: how well can lenses be told apart at all on a survey? A supervised ceiling.

    python eval/supervised_ceiling.py --survey ours|lenstronomy [--n 2000] [--train-share 0.7]
                                      [--steps 1500] [--seed 0] [--workdir DIR]

Trains the SimCLR recipe's encoder (:class:`astrounsup.models.encoders.ConvEncoder`, the
same architecture and input size) as a supervised classifier of ``is_lens`` on the labels
of ``--train-share`` of the survey of ``eval/pipeline_surveys.py`` (same store, same
normalisation as the main job), with right-angle rotations and mirrors, and prints the
AUROC, accuracy and completeness on the other cutouts, and the completeness per quartile
of the arcs' signal-to-noise. The lens search itself sees 10% labels and latents trained
without any; this figure is what its per-object score could reach with seven times the
labels and the labels in the training: an upper reference, not a target.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from pipeline_surveys import make_store, snr_quartiles
from sklearn.metrics import roc_auc_score, roc_curve

from astrounsup.io import CutoutDataset, read_store
from astrounsup.models.encoders import ConvEncoder
from astrounsup.training import fit_normalizer


def _scores(net, x, batch=256):
    net.eval()
    with torch.no_grad():
        out = torch.cat([net(x[i : i + batch])[:, 0] for i in range(0, len(x), batch)])
    net.train()
    return out.numpy()


def top_precision(y, s, *, positives=100, negatives=14850, top=100):
    """Precision of the ``top`` highest scores in a survey of ``positives`` lenses among
    ``negatives`` others, if its scores had the held-out ROC curve of ``s`` (the 1%
    regime of ``eval/rare_lenses.py``: 15,000 cutouts, 150 lenses, 50 of them known)."""
    fpr, tpr, _ = roc_curve(y, s)
    picked = positives * tpr + negatives * fpr
    tp = np.interp(top, picked, positives * tpr)
    return tp / top


def main(argv=None):
    parser = argparse.ArgumentParser(description="supervised lens classifier: a ceiling")
    parser.add_argument("--survey", choices=("ours", "lenstronomy"), required=True)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--train-share", type=float, default=0.7)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=None, help="where the store is kept")
    args = parser.parse_args(argv)
    if not 0 < args.train_share < 1:
        raise SystemExit(f"--train-share must be in (0, 1); got {args.train_share}")
    t0 = time.perf_counter()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="ceiling-"))
    workdir.mkdir(parents=True, exist_ok=True)
    images, table, attrs = read_store(make_store(args.survey, args.n, workdir, seed=args.seed))
    # Normalised as astrounsup.training.train normalises (fit_normalizer).
    norm = fit_normalizer(images, bands=attrs["bands"], table=table)
    ds = CutoutDataset(images, table=table, bands=attrs["bands"], normalizer=norm)
    x, _masks, _ = ds[list(range(len(ds)))]
    x = torch.as_tensor(np.nan_to_num(np.asarray(x)), dtype=torch.float32)
    y = np.asarray(table["is_lens"]).astype(bool)
    rng = np.random.default_rng(args.seed)
    train = rng.random(len(y)) < args.train_share
    with torch.random.fork_rng(devices=[]):  # seeded weights; the global state untouched
        torch.manual_seed(args.seed)
        net = ConvEncoder(x.shape[1], size=x.shape[-1], latent_dim=1)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-4)
    target = torch.as_tensor(y, dtype=torch.float32)
    idx = np.flatnonzero(train)
    for _ in range(args.steps):
        b = rng.choice(idx, args.batch_size)
        xb = torch.rot90(x[b], int(rng.integers(4)), (2, 3))
        if rng.random() < 0.5:
            xb = xb.flip(3)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(xb)[:, 0], target[b])
        opt.zero_grad()
        loss.backward()
        opt.step()
    s = _scores(net, x)
    test = ~train
    called = s > 0
    print(
        f"{args.survey}: supervised {type(net).__name__} on {train.sum()} labels, "
        f"{args.steps} steps; held-out {test.sum()} cutouts: AUROC "
        f"{roc_auc_score(y[test], s[test]):.3f}, accuracy {(called[test] == y[test]).mean():.3f}, "
        f"completeness {called[test & y].mean():.3f}"
    )
    print(
        "  precision of the top 100 at 1% prevalence (15,000 cutouts, 100 unknown lenses) "
        f"that this ROC curve implies: {top_precision(y[test], s[test]):.2f}"
    )
    snr = np.asarray(table["arc_snr"], dtype=float)
    lens = test & y & np.isfinite(snr)
    edges, quart = snr_quartiles(snr[lens])
    for q in range(4):
        sel = quart == q
        print(
            f"  arc S/N quartile {q + 1} ({edges[q]:.1f}-{edges[q + 1]:.1f}): completeness "
            f"{called[lens][sel].mean():.2f} ({sel.sum()} lenses)"
        )
    print(f"runtime {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
