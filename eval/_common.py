"""Shared steps of the evaluation scripts: simulate, normalise, train, embed."""

from __future__ import annotations

import time

import numpy as np
import torch

from astrounsup.io import AsinhNormalizer, CutoutDataset
from astrounsup.simulate import simulate_lens_survey
from astrounsup.training import Trainer, build_model, embed_dataset, select_device


def surveys(n_train, n_test, *, seed, anomaly_fraction=0.0, lens_fraction=0.5):
    """Training and held-out surveys (different seeds) as normalised datasets."""
    train = simulate_lens_survey(
        n_train, seed=seed + 1, anomaly_fraction=anomaly_fraction, lens_fraction=lens_fraction
    )
    test = simulate_lens_survey(
        n_test, seed=seed + 2, anomaly_fraction=anomaly_fraction, lens_fraction=lens_fraction
    )
    rows = np.linspace(0, n_train - 1, min(512, n_train)).astype(int)
    norm = AsinhNormalizer().fit(np.nan_to_num(train.images[rows]))
    ds = [
        CutoutDataset(s.images, table=s.table, bands=s.bands, normalizer=norm)
        for s in (train, test)
    ]
    return train, test, ds[0], ds[1]


def add_device_argument(parser):
    """``--device``: where to train and embed (the figures in the notes are CPU ones)."""
    parser.add_argument(
        "--device", default="cpu", help="cpu (default), cuda, or auto (CUDA when present)"
    )


def device_of(name):
    """The torch device for a ``--device`` value (``auto``: CUDA when present)."""
    return select_device(None if name == "auto" else name)


def train_recipe(
    recipe,
    dataset,
    *,
    steps,
    batch_size,
    seed,
    lr=2e-3,
    model_config=None,
    objective=None,
    device="cpu",
):
    """Train the default model of ``recipe`` (as ``astrounsup train`` builds it; settings
    in ``model_config`` override its defaults, and ``objective`` replaces its training
    objective) on ``device``; returns the model, its input size and the training time
    (s)."""
    survey_bands = dataset.bands
    size = dataset[0][0].shape[-1]
    model, default_objective, input_size = build_model(
        recipe, bands=survey_bands, size=size, pixel_scale=0.263, model_config=model_config,
        seed=seed, asinh_scale=dataset.normalizer.scale_,
        asinh_softening=dataset.normalizer.softening,
    )  # fmt: skip
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    Trainer(
        model,
        objective=default_objective if objective is None else objective,
        max_steps=steps,
        batch_size=batch_size,
        lr=lr,
        warmup_steps=min(50, steps // 5),
        device=device,
        seed=seed,
        progress=False,
    ).fit(dataset)
    return model, input_size, time.perf_counter() - t0


def embed(model, dataset, input_size, device="cpu"):
    return embed_dataset(model, dataset, input_size=input_size, device=device, progress=False)


def flat_pixels(dataset):
    """All normalised cutouts of ``dataset`` flattened to (n, bands * ny * nx)."""
    x, _m, _ = dataset[list(range(len(dataset)))]
    return x.flatten(1).numpy()
