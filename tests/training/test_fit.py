import json

import numpy as np
import pytest

from astrounsup.cli import main
from astrounsup.io import read_store, write_store
from astrounsup.latent import read_latents
from astrounsup.training import (
    MODELS,
    TrainedModel,
    train,
)

from .conftest import embed_cli, flat_weights, train_cli


@pytest.mark.parametrize("model", sorted(MODELS))
def test_train_then_embed_every_model(model, store, config, tmp_path, capsys):
    run = tmp_path / "run"
    assert train_cli(store, config, run, model, "--steps", "3") == 0
    assert f"{model}, 3 steps, loss " in capsys.readouterr().out
    history = json.loads((run / "history.json").read_text())
    assert len(history["loss"]) == 3
    assert all(np.isfinite(history["loss"]))
    assert (run / "loss_curve.png").stat().st_size > 1000
    assert embed_cli(str(run / "last.pt"), str(store), str(run / "latents.h5")) == 0
    latents, table, attrs = read_latents(run / "latents.h5")
    dim = 6
    assert latents.shape == (60, dim)
    assert np.isfinite(latents).all()
    # One row per cutout, in the store's order, with the store's catalog.
    _, store_table, _ = read_store(store)
    assert list(table["object_id"]) == list(store_table["object_id"])
    np.testing.assert_allclose(table["ra"].value, store_table["ra"].value)
    assert attrs["recipe"] == model
    assert attrs["checkpoint"] == str(run / "last.pt")


def test_resume_continues_the_run(store, config, tmp_path):
    run = tmp_path / "run"
    assert train_cli(store, config, run, "cae", "--steps", "2") == 0
    assert train_cli(store, config, run, "cae", "--steps", "4", "--resume") == 0
    history = json.loads((run / "history.json").read_text())
    assert history["step"] == [1, 2, 3, 4]


def test_checkpoint_rebuilds_the_model(store, config, tmp_path):
    run = tmp_path / "run"
    train_cli(store, config, run, "vae", "--steps", "2")
    trained = TrainedModel.load(run / "last.pt")
    assert type(trained.model).__name__ == "VAE"
    assert trained.bands == ("g", "r", "i")
    assert trained.normalizer.to_dict()["kind"] == "asinh"
    assert trained.history.step == [1, 2]


def test_checkpoint_with_other_weights_is_refused_naming_the_file(store, config, tmp_path):
    import torch

    from astrounsup.training import load_checkpoint, save_checkpoint

    run = tmp_path / "run"
    train_cli(store, config, run, "cae", "--steps", "1")
    state = load_checkpoint(run / "last.pt")
    # As an older decoder would have left it: one layer of another width.
    key = "decoder.features.0.weight"
    state["model"][key] = torch.zeros(state["model"][key].shape[0], 3, 4, 4)
    save_checkpoint(tmp_path / "old.pt", state)
    with pytest.raises(
        ValueError, match=r"old\.pt: its weights do not fit the ConvAutoencoder being loaded"
    ):
        TrainedModel.load(tmp_path / "old.pt")


def test_training_twice_in_one_process_gives_the_same_model(store, config, tmp_path):
    import torch

    for run in ("a", "b"):
        assert train_cli(store, config, tmp_path / run, "cae", "--steps", "2") == 0
    a = TrainedModel.load(tmp_path / "a" / "last.pt").model
    b = TrainedModel.load(tmp_path / "b" / "last.pt").model
    assert torch.equal(flat_weights(a), flat_weights(b))


def test_the_vae_recipe_is_in_noise_units_through_train():
    from astrounsup.training import train

    images = np.random.default_rng(0).normal(size=(24, 2, 32, 32)).astype("f4")
    fitted = train(images, model="vae", progress=False,
                   config={"model": {"latent_dim": 4, "widths": [4, 8]},
                           "training": {"max_steps": 1, "batch_size": 8}})  # fmt: skip
    assert fitted.model.noise_scale == [float(v) for v in fitted.normalizer.scale_]
    assert fitted.model.noise_softening == fitted.normalizer.softening


def test_resuming_needs_the_checkpoint_and_the_same_data_and_config(
    store, config, tmp_path, small_survey, capsys
):
    run = tmp_path / "run"
    assert train_cli(store, config, run, "cae", "--steps", "2", "--resume") == 2
    assert "run/last.pt: no checkpoint to resume from" in capsys.readouterr().err
    assert train_cli(store, config, run, "cae", "--steps", "2") == 0
    other = tmp_path / "other.toml"
    other.write_text(config.read_text().replace("latent_dim = 6", "latent_dim = 5"))
    assert train_cli(store, other, run, "cae", "--steps", "4", "--resume") == 2
    err = capsys.readouterr().err
    assert "was trained with [model] latent_dim = 6, now 5" in err
    s = small_survey
    brighter = write_store(tmp_path / "brighter.h5", 3 * s.images, s.table, bands=s.bands,
                           pixel_scale=s.pixel_scale)  # fmt: skip
    assert train_cli(brighter, config, run, "cae", "--steps", "4", "--resume") == 2
    assert "was trained on other cutouts (normalisation scale" in capsys.readouterr().err
    assert train_cli(store, config, run, "cae", "--steps", "4", "--resume") == 0  # the same: fine


def test_a_store_without_a_pixel_scale_can_be_given_one(small_survey, tmp_path, capsys):
    s = small_survey
    store = write_store(tmp_path / "noscale.h5", s.images[:24], s.table[:24], bands=s.bands,
                        pixel_scale=None)  # fmt: skip
    cfg = tmp_path / "c.toml"
    cfg.write_text("[model]\nlatent_dim = 4\nprojection_dim = 4\nwidths = [4, 8]\n"
                   "[training]\nbatch_size = 8\n")  # fmt: skip
    argv = ["train", "--data", str(store), "--model", "simclr", "--config", str(cfg),
            "--steps", "1", "--quiet", "--out", str(tmp_path / "run")]  # fmt: skip
    assert main(argv) == 2
    assert "need the cutouts' arcsec per pixel (pixel_scale=, --pixel-scale)" in (
        capsys.readouterr().err
    )
    assert main([*argv, "--pixel-scale", "0.263"]) == 0
    assert TrainedModel.load(tmp_path / "run" / "last.pt").pixel_scale == pytest.approx(0.263)
    known = write_store(tmp_path / "scale.h5", s.images[:24], s.table[:24], bands=s.bands,
                        pixel_scale=0.2)  # fmt: skip
    argv[2] = str(known)
    assert main([*argv, "--pixel-scale", "0.263", "--out", str(tmp_path / "r2")]) == 2
    assert "pixel_scale 0.263 arcsec given, but the cutouts have 0.2" in capsys.readouterr().err


TINY = {"model": {"latent_dim": 4, "widths": [4, 8]},
        "training": {"max_steps": 2, "batch_size": 8, "seed": 3}}  # fmt: skip


class TestTrainWithItsOwnPieces:
    """``train(normalizer=, objective=)``: what an evaluation of other views or another
    survey's stretch needs, on the shipped path."""

    @staticmethod
    def _images(seed=0):
        return np.random.default_rng(seed).normal(size=(24, 2, 32, 32)).astype("f4")

    def test_the_fitted_normalizer_is_the_one_train_fits(self):
        from astrounsup.training import fit_normalizer, train

        images = self._images()
        fitted = train(images, model="cae", config=TINY, progress=False)
        norm = fit_normalizer(images)
        np.testing.assert_array_equal(norm.scale_, fitted.normalizer.scale_)
        again = train(images, model="cae", config=TINY, progress=False,
                      normalizer=norm)  # fmt: skip
        assert again.normalizer is norm
        np.testing.assert_array_equal(again.embed(images, progress=False),
                                      fitted.embed(images, progress=False))  # fmt: skip

    def test_another_normalizer_changes_the_inputs(self):
        from astrounsup.training import fit_normalizer, train

        images = self._images()
        other = fit_normalizer(self._images(1) * 5.0)
        fitted = train(images, model="cae", config=TINY, progress=False,
                       normalizer=other)  # fmt: skip
        np.testing.assert_array_equal(fitted.normalizer.scale_, other.scale_)

    def test_an_objective_replaces_the_recipe_s(self):
        from astrounsup.training import reconstruction_objective, train

        calls = []

        def objective(model, images, masks, generator):
            calls.append(images.shape)
            return reconstruction_objective(model, images, masks, generator)

        train(self._images(), model="cae", config=TINY, progress=False,
              objective=objective)  # fmt: skip
        assert len(calls) == 2

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"objective": "mse"}, "objective must be callable"),
            ({"normalizer": "asinh"}, "normalizer must be a fitted AsinhNormalizer"),
        ],
    )
    def test_bad_pieces(self, kwargs, match):
        from astrounsup.training import train

        with pytest.raises(ValueError, match=match):
            train(self._images(), model="cae", config=TINY, progress=False, **kwargs)

    def test_a_normalizer_of_other_bands(self):
        from astrounsup.io import AsinhNormalizer
        from astrounsup.training import train

        three = AsinhNormalizer().fit(np.random.default_rng(2).normal(size=(4, 3, 32, 32)))
        with pytest.raises(ValueError, match=r"fitted on 3 bands; the data has 2"):
            train(self._images(), model="cae", config=TINY, progress=False,
                  normalizer=three)  # fmt: skip


def test_simclr_with_survey_views_and_dcl_trains_and_records_them(store, small_survey, tmp_path):
    """The survey-calibrated views read the store's psf_fwhm column; both switches are
    recorded in the checkpoint; data without a PSF FWHM are refused in one line."""
    cfg = {
        "model": {"latent_dim": 4, "projection_dim": 4, "widths": [4, 8], "views": "survey",
                  "loss": "dcl"},
        "training": {"max_steps": 2, "batch_size": 8, "seed": 1},
    }  # fmt: skip
    fitted = train(store, model="simclr", config=cfg, progress=False, out_dir=tmp_path / "run")
    assert len(fitted.history.loss) == 2
    assert np.isfinite(fitted.history.loss).all()
    again = TrainedModel.load(tmp_path / "run" / "last.pt")
    assert again.model.config["views"] == "survey"
    assert again.model.config["loss"] == "dcl"
    assert again.model.criterion.decoupled
    s = small_survey
    with pytest.raises(ValueError, match="views 'survey' needs each cutout's PSF FWHM"):
        train(s.images[:16], model="simclr", config=cfg, bands=s.bands, pixel_scale=0.263,
              progress=False)  # fmt: skip


def test_a_model_of_three_bands_takes_them_from_a_five_band_store(small_survey, tmp_path):
    """g, r, i cutouts among g, r, i, z, Y: fine-tuning from the g, r, i model and embedding
    use those three planes, as a g, r, i store of the same cutouts gives."""
    s = small_survey
    five = np.concatenate([s.images, s.images[:, 1:]], axis=1)  # z, Y: copies of r, i
    gri = write_store(tmp_path / "gri.h5", s.images, s.table, bands=s.bands,
                      pixel_scale=s.pixel_scale)  # fmt: skip
    grizy = write_store(tmp_path / "grizy.h5", five[:, [0, 3, 1, 4, 2]], s.table,
                        bands=["g", "z", "r", "Y", "i"], pixel_scale=s.pixel_scale)  # fmt: skip
    first = train(gri, model="cae", config=TINY, progress=False)
    zero = {**TINY, "training": {**TINY["training"], "max_steps": 0}}
    from_gri = train(gri, model="cae", config=zero, init=first, progress=False)
    from_five = train(grizy, model="cae", config=zero, init=first, progress=False)
    assert from_five.bands == ("g", "r", "i")
    np.testing.assert_allclose(from_five.normalizer.scale_, from_gri.normalizer.scale_, rtol=1e-6)
    a, b = first.embed(grizy, progress=False), first.embed(gri, progress=False)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # A store without one of the model's bands is still refused.
    two = write_store(tmp_path / "gz.h5", five[:, [0, 3]], s.table, bands=["g", "z"],
                      pixel_scale=s.pixel_scale)  # fmt: skip
    with pytest.raises(ValueError, match=r"init: .* takes bands \['g', 'r', 'i'\]"):
        train(two, model="cae", config=zero, init=first, progress=False)
    with pytest.raises(ValueError, match=r"bands \['g', 'z'\] differ from the training bands"):
        first.embed(two, progress=False)
