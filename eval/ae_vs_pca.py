"""Evaluation: does a convolutional autoencoder compress survey cutouts better than PCA?

    python eval/ae_vs_pca.py [--train 2000] [--test 500] [--latent 16] [--steps 1500]

Simulates a training and a held-out test survey (different seeds), trains the CAE recipe
with a ``latent``-dimensional code (:func:`astrounsup.training.train`, on the CPU, a few
minutes), fits PCA with ``latent`` components on the training cutouts normalised as the
CAE saw them (its asinh normaliser, fitted on the training survey), then prints the
test-set reconstruction error (mean squared error per pixel, normalised units) of both,
overall and for lenses. The lecture's claim is that the nonlinear autoencoder compresses
better than the linear PCA at equal code size.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch
from sklearn.decomposition import PCA

from astrounsup.simulate import simulate_lens_survey
from astrounsup.training import short_run_warmup
from astrounsup.training import train as train_model


def main(argv=None):
    parser = argparse.ArgumentParser(description="CAE vs PCA reconstruction error")
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--test", type=int, default=500)
    parser.add_argument("--latent", type=int, default=16)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    train = simulate_lens_survey(args.train, seed=args.seed + 1)
    test = simulate_lens_survey(args.test, seed=args.seed + 2)
    # The CAE recipe as astrounsup.training.train runs it (its normaliser fitted on the
    # training survey); PCA sees the same normalised pixels.
    config = {
        "model": {"latent_dim": args.latent},
        "training": {"max_steps": args.steps, "batch_size": 64, "lr": 2e-3,
                     "warmup_steps": short_run_warmup(50, args.steps), "val_fraction": 0.1,
                     "eval_every": 100, "seed": args.seed},
    }  # fmt: skip
    trained = train_model(train.images, model="cae", config=config, bands=train.bands,
                          pixel_scale=train.pixel_scale, table=train.table, device="cpu",
                          progress=False)  # fmt: skip
    ds_train = trained.dataset(train.images, table=train.table)
    ds_test = trained.dataset(test.images, table=test.table)
    x_train, _m_train, _ = ds_train[list(range(len(ds_train)))]
    x_test, m_test, _ = ds_test[list(range(len(ds_test)))]

    pca = PCA(n_components=args.latent, random_state=args.seed).fit(x_train.flatten(1).numpy())
    recon_pca = pca.inverse_transform(pca.transform(x_test.flatten(1).numpy()))
    err_pca = (recon_pca - x_test.flatten(1).numpy()) ** 2
    keep = (~m_test.flatten(1)).numpy()
    pca_per = (err_pca * keep).sum(1) / keep.sum(1)

    cae = trained.model.eval()
    with torch.no_grad():
        recon = torch.cat([cae(x_test[k : k + 256]) for k in range(0, len(x_test), 256)])
    err = (recon - x_test) ** 2
    keep_t = ~m_test
    cae_per = ((err * keep_t).flatten(1).sum(1) / keep_t.flatten(1).sum(1)).numpy()

    lens = np.asarray(test.table["is_lens"])
    print(
        f"train {args.train}, test {args.test} cutouts of "
        f"{'x'.join(map(str, train.images.shape[1:]))}; code size {args.latent}; "
        f"CAE {args.steps} steps"
    )
    print(
        f"test reconstruction MSE (normalised units):  PCA {pca_per.mean():.5f}   "
        f"CAE {cae_per.mean():.5f}   (CAE/PCA = {cae_per.mean() / pca_per.mean():.2f})"
    )
    print(
        f"  lenses only:                               PCA {pca_per[lens].mean():.5f}   "
        f"CAE {cae_per[lens].mean():.5f}"
    )
    print(f"PCA explained variance (train): {pca.explained_variance_ratio_.sum():.3f}")
    print(f"runtime {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
