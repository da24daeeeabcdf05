"""Evaluation: how much lens information do frozen latents hold? A linear probe.

    python eval/linear_probe.py [--train 6000] [--test 2000] [--seed 0] [--device cpu]

Trains the default CAE, VAE and SimCLR recipes without labels on one simulated survey
(half lenses), freezes them, and fits a logistic regression on the latents of a random 10%
of the training cutouts (with their ``is_lens`` labels); prints its accuracy on a held-out
survey. PCA of the pixels with the same code size is the baseline.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from _common import add_device_argument, device_of, embed, flat_pixels, surveys, train_recipe
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from astrounsup.latent import binary_metrics

RECIPES = {"cae": (400, 64), "vae": (400, 64), "simclr": (1200, 128)}


def probe(z_train, y_train, labeled, z_test, y_test):
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000, C=1.0))
    clf.fit(z_train[labeled], y_train[labeled])
    return binary_metrics(clf.predict(z_test), y_test)


def main(argv=None):
    parser = argparse.ArgumentParser(description="linear probe of frozen latents")
    parser.add_argument("--train", type=int, default=6000)
    parser.add_argument("--test", type=int, default=2000)
    parser.add_argument("--label-fraction", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--steps", type=int, default=None, help="steps of every recipe (default: its own)"
    )
    parser.add_argument(
        "--batch-size", type=int, default=None, help="batch of every recipe (default: its own)"
    )
    add_device_argument(parser)
    args = parser.parse_args(argv)
    device = device_of(args.device)
    t0 = time.perf_counter()
    train, test = surveys(args.train, args.test, seed=args.seed)
    y_train = np.asarray(train.table["is_lens"])
    y_test = np.asarray(test.table["is_lens"])
    labeled = np.random.default_rng(args.seed).random(len(y_train)) < args.label_fraction
    print(f"train {args.train}, held-out {args.test}, {labeled.sum()} labels for the probe")
    for recipe, (steps, batch) in RECIPES.items():
        steps, batch = args.steps or steps, args.batch_size or batch
        trained, t_train = train_recipe(
            recipe, train, steps=steps, batch_size=batch, seed=args.seed, device=device
        )
        z_train, z_test = embed(trained, train, device), embed(trained, test, device)
        m = probe(z_train, y_train, labeled, z_test, y_test)
        print(
            f"{recipe:7s} latent {z_train.shape[1]:3d}  {steps} steps x {batch} "
            f"({t_train:.0f} s)  probe accuracy {m['accuracy']:.3f}  completeness "
            f"{m['completeness']:.3f}  precision {m['precision']:.3f}"
        )
    # The pixels as the last model saw them (every recipe fits the same normaliser).
    x_train, x_test = flat_pixels(trained, train), flat_pixels(trained, test)
    pca = PCA(32, random_state=args.seed).fit(x_train)
    m = probe(pca.transform(x_train), y_train, labeled, pca.transform(x_test), y_test)
    print(
        f"{'PCA':7s} latent  32  pixels                   probe accuracy {m['accuracy']:.3f}  "
        f"completeness {m['completeness']:.3f}  precision {m['precision']:.3f}"
    )
    print(f"runtime {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
