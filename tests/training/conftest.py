"""Fixtures of the training tests: a small store, the tiny config, the training command."""

import pytest

from astrounsup.cli import main
from astrounsup.io import write_store


@pytest.fixture(scope="module")
def store(small_survey, tmp_path_factory):
    path = tmp_path_factory.mktemp("store") / "s.h5"
    return write_store(
        path,
        small_survey.images,
        small_survey.table,
        bands=small_survey.bands,
        pixel_scale=small_survey.pixel_scale,
    )


@pytest.fixture
def config(tiny_config):
    return tiny_config


def train_cli(store, config, run, model="cae", *extra):
    """``astrounsup train`` on the tiny config; returns the exit status."""
    return main(
        [
            "train",
            "--data",
            str(store),
            "--model",
            model,
            "--config",
            str(config),
            "--out",
            str(run),
            "--quiet",
            *extra,
        ]
    )


def embed_cli(checkpoint, data, out):
    """``astrounsup embed``; returns the exit status."""
    argv = ["embed", "--checkpoint", str(checkpoint), "--data", str(data), "--out", str(out)]
    return main(argv)


def flat_weights(model):
    """Every parameter of ``model``, flattened into one tensor."""
    import torch

    return torch.cat([p.detach().flatten() for p in model.parameters()])
