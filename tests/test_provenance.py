"""Every writer stamps its output with the same provenance keys, from one helper."""

from pathlib import Path

import numpy as np
import pytest

from astrounsup._provenance import provenance

KEYS = {"step", "astrounsup_version", "date", "versions"}


def test_the_stamp():
    meta = provenance("x", path=Path("a/b"), k=np.int64(3), none=None)
    assert set(meta) >= KEYS
    assert meta["path"] == "a/b"
    assert meta["k"] == 3
    assert type(meta["k"]) is int
    assert "none" not in meta
    for package in ("numpy", "astropy", "scikit-learn", "torch"):
        assert package in meta["versions"]


@pytest.fixture(scope="module")
def outputs(small_survey, tmp_path_factory):
    from astrounsup.io import read_store, write_store
    from astrounsup.latent import read_latents
    from astrounsup.pipeline import cluster_latents, embed_latents
    from astrounsup.simulate import simulate_stars
    from astrounsup.training import load_checkpoint, train

    d = tmp_path_factory.mktemp("provenance")
    s = small_survey
    store = write_store(d / "s.h5", s.images[:24], s.table[:24], bands=s.bands, pixel_scale=0.263)
    config = {"model": {"latent_dim": 4, "widths": [4, 8]},
              "training": {"max_steps": 1, "batch_size": 8}}  # fmt: skip
    train(store, config=config, out_dir=d / "run", progress=False)
    embed_latents(d / "run" / "last.pt", store, out=d / "z.h5", progress=False)
    z, table, attrs = read_latents(d / "z.h5")
    return {
        "simulated survey": s.table.meta,
        "simulated stars": simulate_stars(50, seed=1).meta,
        "store": read_store(store)[2],
        "checkpoint": load_checkpoint(d / "run" / "last.pt")["provenance"],
        "latents": attrs,
        "catalog": cluster_latents(z, table, {"k": 2}).tables["clusters"].meta,
    }


@pytest.mark.parametrize(
    "what",
    ["simulated survey", "simulated stars", "store", "checkpoint", "latents", "catalog"],
)
def test_every_output_carries_the_same_keys(outputs, what):
    meta = outputs[what]
    assert set(meta) >= KEYS, f"{what} lacks {KEYS - set(meta)}"
    assert "created" not in meta


def test_the_steps_are_named(outputs):
    assert outputs["latents"]["step"] == "astrounsup embed"
    assert outputs["catalog"]["step"] == "astrounsup cluster"
    assert outputs["checkpoint"]["step"] == "astrounsup.training.Trainer"
