"""Evaluation: lens clustering with SimCLR settings other than the recipe's defaults.

    python eval/simclr_settings.py [--model-config JSON] [--seeing 1,3] [--depth 1,4]
                                   [--ebv 0,0.1 | --ebv none] [--brightness=-1,1 | none]
                                   [--space stretched|linear]
                                   [--steps 1500] [--batch-size 128] [--seed 0]
                                   [--device cpu]

The search behind the defaults of ``astrounsup train --model simclr``, kept so that it can
be repeated. It simulates the surveys of ``lens_clustering.py`` (6,000 training cutouts,
2,000 held out, half lenses), trains SimCLR without labels with the given model settings
(``--model-config``, e.g. ``'{"kind": "resnet"}'``, ``'{"temperature": 0.5}'`` or
``'{"decorrelation_weight": 20}'``) and
view augmentations (seeing factor, depth factor, E(B-V) and brightness (mag) ranges of
:func:`astrounsup.transforms.contrastive_pipeline`), and prints the k-means (k = 20)
accuracy and completeness on the held-out survey, on the latents and on their first 12
principal components (as ``lens_clustering.py``), averaged over ``--repeats`` k-means seeds
and 10% label draws (the first run's figures and correct fraction of each kind printed as
``lens_clustering.py`` prints them), and the accuracy of a linear probe on 10% labels.

``--space`` chooses what the views act on. The recipe applies them to the cutouts as the
dataset yields them, asinh-stretched (``stretched``); ``linear`` undoes the stretch first
(``sinh(y * scale_)``, which is the sky-subtracted flux in units of the softening times
each cutout's noise, so a blur there is a blur of the fluxes), augments, and stretches
again.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch
from _common import add_device_argument, device_of, embed, surveys, train_recipe
from lens_clustering import principal_components, repeated_kmeans
from linear_probe import probe

from astrounsup.latent import DEFAULT_N_CLUSTERS
from astrounsup.training import (
    contrastive_objective,
    contrastive_view_settings,
    fit_normalizer,
)
from astrounsup.transforms import contrastive_views


def _pair(text, name):
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        msg = f"--{name} must be two numbers 'low,high'; got {text!r}"
        raise SystemExit(msg) from None
    return lo, hi


def linear_flux_objective(views, scale):
    """SimCLR's objective with the views applied to linear fluxes: unstretch, augment,
    stretch again (``scale``: the normaliser's per-band ``scale_``)."""
    s = torch.as_tensor(np.asarray(scale), dtype=torch.float32)[None, :, None, None]

    def objective(model, images, masks, generator):
        k = s.to(images.device)
        (a, _), (b, _) = views(torch.sinh(images * k), masks, generator=generator)
        return model.loss(torch.asinh(a) / k, torch.asinh(b) / k)

    return objective


def main(argv=None):
    parser = argparse.ArgumentParser(description="lens clustering for SimCLR settings")
    parser.add_argument("--model-config", default="{}", help="JSON of SimCLR settings")
    parser.add_argument("--seeing", default="1,3", help="seeing factor range")
    parser.add_argument("--depth", default="1,4", help="noise factor range")
    parser.add_argument("--ebv", default="0,0.1", help="E(B-V) range, or 'none'")
    parser.add_argument(
        "--brightness",
        default="-1,1",
        help="magnitude change range (--brightness=-1,1), or 'none'",
    )
    parser.add_argument("--space", choices=("stretched", "linear"), default="stretched")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--k", type=int, default=DEFAULT_N_CLUSTERS)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train", type=int, default=6000, help="training cutouts")
    parser.add_argument("--test", type=int, default=2000, help="held-out cutouts")
    add_device_argument(parser)
    args = parser.parse_args(argv)
    device = device_of(args.device)
    t0 = time.perf_counter()
    train, test = surveys(args.train, args.test, seed=args.seed)
    norm = fit_normalizer(train.images, bands=train.bands, table=train.table)
    y_train = np.asarray(train.table["is_lens"])
    y_test = np.asarray(test.table["is_lens"])
    kinds = np.asarray(test.table["kind"])
    settings = contrastive_view_settings(
        bands=train.bands, size=train.images.shape[-1], pixel_scale=train.pixel_scale,
        asinh_scale=norm.scale_,
    )  # fmt: skip
    # The recipe's views, with this run's ranges; on stretched cutouts the brightness
    # change undoes the stretch, on linear fluxes it multiplies.
    settings["asinh_scale"] = norm.scale_ if args.space == "stretched" else None
    del settings["ebv"], settings["seeing_factor"], settings["depth"]
    views = contrastive_views(
        **settings,
        seeing_factor=_pair(args.seeing, "seeing"),
        depth=_pair(args.depth, "depth"),
        ebv=None if args.ebv == "none" else _pair(args.ebv, "ebv"),
        brightness=None if args.brightness == "none" else _pair(args.brightness, "brightness"),
    )
    if args.space == "linear":
        objective = linear_flux_objective(views, norm.scale_)
    else:
        objective = contrastive_objective(views)
    trained, t_train = train_recipe(
        "simclr", train, steps=args.steps, batch_size=args.batch_size, seed=args.seed,
        model_config=json.loads(args.model_config), objective=objective, normalizer=norm,
        device=device,
    )  # fmt: skip
    z_train = embed(trained, train, device)
    z_test = embed(trained, test, device)
    print(
        f"model {args.model_config} seeing {args.seeing} depth {args.depth} ebv {args.ebv} "
        f"brightness {args.brightness} space {args.space}; {args.steps} steps of "
        f"{args.batch_size} in {t_train:.0f} s"
    )
    _, c_train, c_test = principal_components(z_train, z_test, seed=args.seed)
    kmeans = {
        name: repeated_kmeans(
            name,
            a,
            b,
            y_train,
            y_test,
            kinds,
            k=args.k,
            seed=args.seed,
            repeats=args.repeats,
            show_first=True,
        )
        for name, a, b in (
            ("SimCLR latents", z_train, z_test),
            ("PCA(12) of SimCLR", c_train, c_test),
        )
    }
    labeled = np.random.default_rng(args.seed).random(len(y_train)) < 0.1
    probe_acc = probe(z_train, y_train, labeled, z_test, y_test)["accuracy"]
    for name, runs in kmeans.items():
        acc = [m["accuracy"] for m in runs]
        print(
            f"  {name}: k-means (k = {args.k}) over {args.repeats} seeds and label draws: "
            f"accuracy {np.mean(acc):.3f} ({min(acc):.3f}-{max(acc):.3f}), completeness "
            f"{np.mean([m['completeness'] for m in runs]):.3f}"
        )
    print(f"  linear probe (10% labels) accuracy {probe_acc:.3f}")
    print(f"runtime {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
