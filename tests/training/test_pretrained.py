"""The shipped encoder: its card and checksum, loading it for a survey, and ``train(init=)``."""

import hashlib
import json
import shutil

import numpy as np
import pytest

from astrounsup.training import (
    PRETRAINED,
    TrainedModel,
    load_pretrained,
    pretrained_card,
    train,
    write_pretrained,
)
from astrounsup.training import _weights as pretrained_module


@pytest.fixture(scope="module")
def gri(small_survey):
    """The small survey's g, r, i cutouts (0.263 arcsec/px, 64 px)."""
    assert tuple(small_survey.bands) == ("g", "r", "i")
    return small_survey.images


@pytest.fixture
def weights_copy(tmp_path, monkeypatch):
    """The shipped files copied into a folder the package reads instead."""
    for path in pretrained_module._WEIGHTS.iterdir():
        shutil.copy(path, tmp_path / path.name)
    monkeypatch.setattr(pretrained_module, "_WEIGHTS", tmp_path)
    return tmp_path


def test_card_names_the_file_sha256_and_what_it_takes():
    card = pretrained_card()
    weights = pretrained_module._WEIGHTS / card["file"]
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == card["sha256"]
    assert card["name"] == PRETRAINED
    assert (card["bands"], card["size"], card["input_size"]) == (["g", "r", "i"], 64, 36)
    assert card["steps"] == sum(1 for _ in card["surveys"]) * card["settings"]["steps"]
    lo, hi = card["pixel_scale_range"]
    assert all(lo <= s["pixel_scale"] <= hi for s in card["surveys"])


def test_the_model_card_in_the_docs_states_the_shipped_checksum():
    from pathlib import Path

    docs = Path(__file__).resolve().parents[2] / "docs" / "pretrained.rst"
    assert pretrained_card()["sha256"] in docs.read_text()


def test_loads_with_the_recorded_settings():
    encoder = load_pretrained()
    assert isinstance(encoder, TrainedModel)
    assert (encoder.recipe, encoder.bands, encoder.input_size) == ("simclr", ("g", "r", "i"), 36)
    assert encoder.pixel_scale_range == tuple(pretrained_card()["pixel_scale_range"])


def test_a_changed_byte_is_refused(weights_copy):
    path = weights_copy / pretrained_card()["file"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"SHA-256 .* is not its card's"):
        load_pretrained()


def test_a_missing_encoder_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(pretrained_module, "_WEIGHTS", tmp_path)
    with pytest.raises(FileNotFoundError, match="no shipped encoder 'simclr-gri'"):
        load_pretrained()
    with pytest.raises(ValueError, match="name must be"):
        pretrained_card("../x")


def test_with_data_the_normaliser_is_fitted_on_it(gri):
    from astrounsup.training import fit_normalizer

    encoder = load_pretrained(gri, bands="gri", pixel_scale=0.263)
    expected = fit_normalizer(gri, bands="gri", pixel_scale=0.263).scale_
    np.testing.assert_allclose(encoder.normalizer.scale_, expected)
    assert encoder.pixel_scale == pytest.approx(0.263)
    latents = encoder.embed(gri, progress=False)
    assert latents.shape == (len(gri), 64)
    assert np.isfinite(latents).all()


def test_cutouts_with_more_bands_give_it_their_g_r_i(gri):
    """A g, z, r, y, i survey embeds as its g, r, i planes would."""
    five = np.stack([gri[:, 0], gri[:, 2], gri[:, 1], gri[:, 2], gri[:, 2]], axis=1)
    from astrounsup.io import as_dataset

    five = as_dataset(five, bands=["g", "z", "r", "y", "i"], pixel_scale=0.263)
    a = load_pretrained(five)
    b = load_pretrained(gri, bands="gri", pixel_scale=0.263)
    assert a.bands == ("g", "r", "i")
    np.testing.assert_allclose(a.normalizer.scale_, b.normalizer.scale_, rtol=1e-6)
    np.testing.assert_allclose(a.embed(five, progress=False), b.embed(gri, progress=False),
                               rtol=1e-5, atol=1e-6)  # fmt: skip


@pytest.mark.parametrize(
    ("images", "kwargs", "match"),
    [
        (
            lambda x: x[:, :2],
            {"bands": "gr", "pixel_scale": 0.2},
            r"takes bands \['g', 'r', 'i'\]",
        ),
        (lambda x: x[:, :, :48, :48], {"bands": "gri", "pixel_scale": 0.2}, "input of 36 px"),
        (lambda x: x, {"bands": "gri", "pixel_scale": 0.6}, "trained on 0.168-0.3 arcsec/px"),
        (lambda x: x, {"bands": "gri"}, "the data has nan"),
    ],
)
def test_data_it_cannot_take_is_refused_in_one_line(gri, images, kwargs, match):
    with pytest.raises(ValueError, match=match) as err:
        load_pretrained(images(gri), **kwargs)
    assert "\n" not in str(err.value)
    assert "the shipped encoder simclr-gri" in str(err.value)


def test_train_from_it_with_no_steps_is_the_shipped_encoder(gri, tmp_path):
    trained = train(
        gri,
        model="simclr",
        bands="gri",
        pixel_scale=0.263,
        init="pretrained",
        config={"training": {"max_steps": 0}},
        out_dir=tmp_path,
        progress=False,
    )
    assert trained.steps == 0
    assert trained.init.startswith(f"pretrained {PRETRAINED} (")
    reference = load_pretrained(gri, bands="gri", pixel_scale=0.263).embed(gri, progress=False)
    np.testing.assert_array_equal(trained.embed(gri, progress=False), reference)
    # Saved, so a run folder holds the model it embedded with.
    again = TrainedModel.load(tmp_path / "last.pt")
    np.testing.assert_array_equal(again.embed(gri, progress=False), reference)
    assert again.init == trained.init


def test_fine_tuning_starts_from_its_weights(gri):
    shipped = load_pretrained().model.state_dict()
    tuned = train(gri, model="simclr", bands="gri", pixel_scale=0.263, init="pretrained",
                  config={"training": {"max_steps": 2, "batch_size": 8, "lr": 1e-9,
                                       "warmup_steps": 0}}, progress=False)  # fmt: skip
    for name, tensor in tuned.model.state_dict().items():
        np.testing.assert_allclose(tensor.numpy(), shipped[name].numpy(), atol=1e-5)
    assert tuned.describe().startswith("simclr, 2 steps, loss ")
    assert "from pretrained simclr-gri" in tuned.describe()


def test_a_model_setting_other_than_its_own_is_refused(gri):
    with pytest.raises(ValueError, match="has \\[model\\] latent_dim = 64; the config sets 8"):
        train(
            gri,
            model="simclr",
            bands="gri",
            pixel_scale=0.263,
            init="pretrained",
            config={"model": {"latent_dim": 8}},
            progress=False,
        )
    with pytest.raises(ValueError, match="is a 'simclr' model, not 'cae'"):
        train(gri, model="cae", bands="gri", pixel_scale=0.263, init="pretrained", progress=False)
    with pytest.raises(ValueError, match="init must be 'pretrained', a checkpoint path"):
        train(gri, model="simclr", bands="gri", pixel_scale=0.263, init=3, progress=False)


def test_init_from_a_checkpoint_of_ones_own(gri, tmp_path):
    config = {"model": {"latent_dim": 4, "widths": [4, 8]},
              "training": {"max_steps": 1, "batch_size": 8}}  # fmt: skip
    first = train(gri, model="cae", bands="gri", pixel_scale=0.263, config=config,
                  out_dir=tmp_path / "a", progress=False)  # fmt: skip
    own = tmp_path / "a" / "last.pt"
    again = train(gri, model="cae", bands="gri", pixel_scale=0.263, init=own,
                  config={"training": {"max_steps": 0}}, progress=False)  # fmt: skip
    np.testing.assert_array_equal(
        again.embed(gri, progress=False), first.embed(gri, progress=False)
    )
    assert again.init == str(tmp_path / "a" / "last.pt")
    with pytest.raises(
        ValueError, match=r"was trained on 0\.239-0\.289 arcsec/px; the data has 0\.2"
    ):
        train(gri, model="cae", bands="gri", pixel_scale=0.2, init=tmp_path / "a" / "last.pt",
              config={"training": {"max_steps": 0}}, progress=False)  # fmt: skip


def test_write_then_load_round_trip(gri, weights_copy):
    tuned = train(gri, model="simclr", bands="gri", pixel_scale=0.263, init="pretrained",
                  config={"training": {"max_steps": 0}}, progress=False)  # fmt: skip
    card = {"size": 64, "pixel_scale_range": [0.25, 0.27], "steps": 0, "seconds": 0,
            "settings": {"steps": 0}, "surveys": []}  # fmt: skip
    path = write_pretrained(tuned, card=card, name="test-enc", directory=weights_copy)
    written = json.loads(path.read_text())
    assert written["file"] == "test_enc.pt"
    assert (
        written["sha256"]
        == hashlib.sha256((weights_copy / "test_enc.pt").read_bytes()).hexdigest()
    )
    loaded = load_pretrained(name="test-enc")
    assert loaded.pixel_scale_range == (0.25, 0.27)
    np.testing.assert_array_equal(
        loaded.embed(gri, progress=False), tuned.embed(gri, progress=False)
    )


def test_train_command_starts_from_the_shipped_encoder(store, tmp_path, capsys):
    from astrounsup.cli import main

    rc = main(["train", "--data", str(store), "--model", "simclr", "--init", "pretrained",
               "--steps", "0", "--out", str(tmp_path / "run"), "--quiet"])  # fmt: skip
    assert rc == 0
    out = capsys.readouterr().out
    assert f"simclr, 0 steps, from pretrained {PRETRAINED}" in out
    assert out.rstrip().endswith(f"wrote {tmp_path / 'run'}/last.pt")
    assert TrainedModel.load(tmp_path / "run" / "last.pt").init.startswith("pretrained")
    rc = main(["train", "--data", str(store), "--model", "cae", "--init", "pretrained",
               "--out", str(tmp_path / "run2"), "--quiet"])  # fmt: skip
    assert rc != 0
    assert "is a 'simclr' model, not 'cae'" in capsys.readouterr().err


def test_init_from_a_model_trained_without_a_pixel_scale(gri):
    config = {"model": {"latent_dim": 4, "widths": [4, 8]},
              "training": {"max_steps": 1, "batch_size": 8}}  # fmt: skip
    first = train(gri, model="cae", bands="gri", config=config, progress=False)
    again = train(gri, model="cae", bands="gri", init=first, progress=False,
                  config={"training": {"max_steps": 0}})  # fmt: skip
    assert again.init == "a trained model"
    np.testing.assert_array_equal(
        again.embed(gri, progress=False), first.embed(gri, progress=False)
    )
