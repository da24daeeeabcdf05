"""Shared steps of the evaluation scripts: simulate, then train and embed as the package
does (:func:`astrounsup.training.train`: its normaliser, its seeding, the survey's own
pixel scale)."""

from __future__ import annotations

import time

from astrounsup.simulate import simulate_lens_survey
from astrounsup.training import select_device, short_run_warmup, train

#: The warm-up of an evaluation's training, before :func:`short_run_warmup` caps it.
WARMUP_STEPS = 50


def surveys(n_train, n_test, *, seed, anomaly_fraction=0.0, lens_fraction=0.5):
    """Training and held-out surveys (different seeds)."""
    train_survey = simulate_lens_survey(
        n_train, seed=seed + 1, anomaly_fraction=anomaly_fraction, lens_fraction=lens_fraction
    )
    test_survey = simulate_lens_survey(
        n_test, seed=seed + 2, anomaly_fraction=anomaly_fraction, lens_fraction=lens_fraction
    )
    return train_survey, test_survey


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
    survey,
    *,
    steps,
    batch_size,
    seed,
    lr=2e-3,
    model_config=None,
    objective=None,
    normalizer=None,
    device="cpu",
):
    """Train recipe ``recipe`` on a simulated survey with
    :func:`astrounsup.training.train` (settings in ``model_config`` override the model's
    defaults; ``objective`` and ``normalizer`` replace the recipe's, as ``train`` takes
    them); returns the trained model and the training time (s)."""
    config = {
        "model": dict(model_config or {}),
        "training": {
            "max_steps": steps,
            "batch_size": batch_size,
            "lr": lr,
            "warmup_steps": short_run_warmup(WARMUP_STEPS, steps),
            "seed": seed,
        },
    }
    t0 = time.perf_counter()
    trained = train(
        survey.images, model=recipe, config=config, bands=survey.bands,
        pixel_scale=survey.pixel_scale, table=survey.table, device=device, progress=False,
        objective=objective, normalizer=normalizer,
    )  # fmt: skip
    return trained, time.perf_counter() - t0


def embed(trained, survey, device="cpu"):
    """The latents of a survey's cutouts, normalised as the model's training cutouts."""
    return trained.embed(survey.images, device=device, progress=False)


def flat_pixels(trained, survey):
    """A survey's cutouts as ``trained`` sees them (its normaliser, masked pixels as it
    fills them), flattened to (n, bands * ny * nx)."""
    dataset = trained.dataset(survey.images, table=survey.table)
    x, _m, _ = dataset[list(range(len(dataset)))]
    return x.flatten(1).numpy()
