import json
import re

import numpy as np
import pytest

from astrounsup.cli import main
from astrounsup.io import read_store, write_store
from astrounsup.latent import read_latents
from astrounsup.training import (
    MODELS,
    TrainedModel,
    build_model,
    default_config,
    describe_config,
    load_config,
    resolve_config,
)


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


def _train(store, config, run, model="cae", *extra):
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


@pytest.mark.parametrize("model", sorted(MODELS))
def test_train_then_embed_every_model(model, store, config, tmp_path, capsys):
    run = tmp_path / "run"
    assert _train(store, config, run, model, "--steps", "3") == 0
    assert f"{model}: 3 steps" in capsys.readouterr().out
    history = json.loads((run / "history.json").read_text())
    assert len(history["loss"]) == 3
    assert all(np.isfinite(history["loss"]))
    assert (run / "loss_curve.png").stat().st_size > 1000
    assert (
        main(
            [
                "embed",
                "--checkpoint",
                str(run / "last.pt"),
                "--data",
                str(store),
                "--out",
                str(run / "latents.h5"),
            ]
        )
        == 0
    )
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
    assert _train(store, config, run, "cae", "--steps", "2") == 0
    assert _train(store, config, run, "cae", "--steps", "4", "--resume") == 0
    history = json.loads((run / "history.json").read_text())
    assert history["step"] == [1, 2, 3, 4]


def test_checkpoint_rebuilds_the_model(store, config, tmp_path):
    run = tmp_path / "run"
    _train(store, config, run, "vae", "--steps", "2")
    trained = TrainedModel.load(run / "last.pt")
    assert type(trained.model).__name__ == "VAE"
    assert trained.bands == ("g", "r", "i")
    assert trained.normalizer.to_dict()["kind"] == "asinh"
    assert trained.history.step == [1, 2]


def test_checkpoint_with_other_weights_is_refused_naming_the_file(store, config, tmp_path):
    import torch

    from astrounsup.training import load_checkpoint, save_checkpoint

    run = tmp_path / "run"
    _train(store, config, run, "cae", "--steps", "1")
    state = load_checkpoint(run / "last.pt")
    # As an older decoder would have left it: one layer of another width.
    key = "decoder.features.0.weight"
    state["model"][key] = torch.zeros(state["model"][key].shape[0], 3, 4, 4)
    save_checkpoint(tmp_path / "old.pt", state)
    with pytest.raises(
        ValueError, match=r"old\.pt: its weights do not fit the ConvAutoencoder being loaded"
    ):
        TrainedModel.load(tmp_path / "old.pt")


class TestBadConfiguration:
    def test_unknown_model_name(self, store, tmp_path, capsys):
        with pytest.raises(SystemExit):
            main(["train", "--data", str(store), "--model", "gan", "--out", str(tmp_path)])
        assert "invalid choice: 'gan'" in capsys.readouterr().err

    @pytest.mark.parametrize(
        ("toml", "match"),
        [
            ("[model]\nlatent_dim = 0\n", r"latent_dim must be an integer in \[1, 4096\]"),
            (
                "[model]\nwidths = [8, 16, 32, 64, 128, 256]\n",
                r"size must be an integer in \[128, 256\] px for 6 downsampling stages; got 64",
            ),
            ("[model]\ncolour = 'blue'\n", r"unknown key 'colour' for model 'cae'; allowed: \["),
            ("[training]\nbatch_size = 0\n", "batch_size must be a positive integer"),
            ("[optimiser]\nlr = 1\n", r"unknown config sections \['optimiser'\]"),
        ],
    )
    def test_refused_before_training(self, store, tmp_path, capsys, toml, match):
        cfg = tmp_path / "bad.toml"
        cfg.write_text(toml)
        run = tmp_path / "run"
        status = _train(store, cfg, run, "cae", "--steps", "2")
        assert status == 2
        assert re.search(match, capsys.readouterr().err)
        assert not (run / "last.pt").exists()

    def test_embed_refuses_other_bands(self, small_survey, store, config, tmp_path, capsys):
        run = tmp_path / "run"
        _train(store, config, run, "cae", "--steps", "1")
        other = write_store(
            tmp_path / "o.h5",
            small_survey.images[:, :2],
            small_survey.table,
            bands=["g", "r"],
            pixel_scale=0.263,
        )
        assert (
            main(
                [
                    "embed",
                    "--checkpoint",
                    str(run / "last.pt"),
                    "--data",
                    str(other),
                    "--out",
                    str(tmp_path / "l.h5"),
                ]
            )
            == 2
        )
        assert "differ from the training bands" in capsys.readouterr().err


def _weights(model):
    import torch

    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_build_model_seeds_the_initial_weights_alone():
    import torch

    kw = {
        "bands": ("g", "r"),
        "size": 32,
        "pixel_scale": 0.263,
        "model_config": {"widths": (4, 8)},
    }
    torch.manual_seed(1)
    first = _weights(build_model("vae", seed=3, **kw)[0])
    state = torch.get_rng_state()
    torch.rand(5)  # other random work in between must not matter
    again = _weights(build_model("vae", seed=3, **kw)[0])
    assert torch.equal(first, again)
    assert not torch.equal(first, _weights(build_model("vae", seed=4, **kw)[0]))
    torch.manual_seed(1)
    build_model("vae", seed=3, **kw)
    assert torch.equal(torch.get_rng_state(), state)  # the global generator is untouched
    with pytest.raises(ValueError, match=r"seed must be an integer; got 1\.5"):
        build_model("vae", seed=1.5, **kw)


def test_training_twice_in_one_process_gives_the_same_model(store, config, tmp_path):
    import torch

    for run in ("a", "b"):
        assert _train(store, config, tmp_path / run, "cae", "--steps", "2") == 0
    a = TrainedModel.load(tmp_path / "a" / "last.pt").model
    b = TrainedModel.load(tmp_path / "b" / "last.pt").model
    assert torch.equal(_weights(a), _weights(b))


def test_simclr_needs_the_stretch_of_its_cutouts():
    with pytest.raises(ValueError, match=r"build_model\('simclr'\) needs asinh_scale"):
        build_model("simclr", bands=("g", "r", "i"), size=64, pixel_scale=0.263)
    _, objective, _ = build_model("cae", bands=("g", "r", "i"), size=64, pixel_scale=0.263)
    assert callable(objective)


def test_build_model_and_config_defaults():
    model, _, size = build_model(
        "simclr",
        bands=("g", "r", "i"),
        size=64,
        pixel_scale=0.263,
        model_config={"widths": (8, 16)},
        asinh_scale=[3.0, 3.0, 3.0],
    )
    assert size == 36
    assert type(model).__name__ == "SimCLR"
    assert load_config(None) == {}


class TestConfig:
    @pytest.mark.parametrize("model", sorted(MODELS))
    def test_defaults_name_every_setting_of_the_model_and_trainer(self, model):
        import inspect

        from astrounsup.io import AsinhNormalizer
        from astrounsup.training import Trainer

        cfg = default_config(model)
        net = build_model(
            model, bands=("g", "r", "i"), size=64, pixel_scale=0.263, asinh_scale=[1.0] * 3
        )[0]
        # Every constructor argument but those train() sets itself has a default here ...
        taken = set(inspect.signature(type(net)).parameters) - {"bands", "size"}
        assert set(cfg["model"]) == taken
        trainer = set(inspect.signature(Trainer).parameters)
        assert set(cfg["training"]) == trainer - {
            "model",
            "objective",
            "out_dir",
            "device",
            "progress",
            "extra_state",
        }
        assert set(cfg["normalization"]) == set(inspect.signature(AsinhNormalizer).parameters)
        # ... and the recipe's own settings are the ones the model is built with.
        for key, value in MODELS[model].items():
            assert cfg["model"][key] == value
            assert net.config[key] == value

    @pytest.mark.parametrize("model", sorted(MODELS))
    def test_every_setting_is_described_with_its_default(self, model):
        rows = describe_config(model)
        cfg = default_config(model)
        assert [(section, key, default) for section, key, default, _ in rows] == [
            (section, key, default)
            for section, values in cfg.items()
            for key, default in values.items()
        ]
        for section, key, _, meaning in rows:
            assert len(meaning) > 15, (section, key, meaning)
            assert not meaning.startswith("As :class:"), (section, key, meaning)

    def test_a_setting_documented_as_another_class_s_takes_its_meaning(self):
        from astrounsup._docparams import parameter_docs
        from astrounsup.models import ConvAutoencoder, SimCLR

        assert parameter_docs(SimCLR)["widths"][1].startswith("As :class:")
        meanings = {key: meaning for _, key, _, meaning in describe_config("simclr")}
        assert meanings["widths"] == parameter_docs(ConvAutoencoder)["widths"][1]

    def test_partial_configs_merge_over_the_defaults(self, tmp_path):
        path = tmp_path / "c.toml"
        path.write_text("[training]\nlr = 0.01\ncompile = false\n")
        cfg = resolve_config(path, model="simclr")
        assert cfg["training"]["lr"] == 0.01
        assert cfg["training"]["compile"] is False
        assert cfg["training"]["max_steps"] == 1000
        assert cfg["model"]["temperature"] == 0.2
        assert (
            resolve_config({"model": {"temperature": 0.5}}, model="simclr")["model"]["temperature"]
            == 0.5
        )
        # The defaults themselves are not changed by a merge.
        assert default_config("simclr")["model"]["temperature"] == 0.2

    @pytest.mark.parametrize(
        ("config", "match"),
        [
            ({"training": {"lr_rate": 1}}, r"config\['training'\]: unknown key 'lr_rate'"),
            ({"model": {"beta": 2}}, r"unknown key 'beta' for model 'cae'"),
            ({"normalisation": {}}, r"unknown sections \['normalisation'\]"),
            ([1, 2], "config must be a dict of sections"),
        ],
    )
    def test_unknown_settings_are_refused_by_name(self, config, match):
        with pytest.raises(ValueError, match=match):
            resolve_config(config)

    def test_an_unknown_recipe_and_a_broken_file(self, tmp_path):
        with pytest.raises(ValueError, match=r"model must be one of \[.*'vae'\]; got 'gan'"):
            default_config("gan")
        (tmp_path / "bad.toml").write_text("[training\n")
        with pytest.raises(ValueError, match=r"bad\.toml: not a TOML file"):
            load_config(tmp_path / "bad.toml")


def test_simclr_seeing_range_fits_the_view():
    from astrounsup.instrument import kernel_half_width
    from astrounsup.training import contrastive_view_settings
    from astrounsup.transforms import contrastive_view_size

    default = contrastive_view_settings(
        bands="gri", size=64, pixel_scale=0.263, asinh_scale=[1] * 3
    )
    assert default["seeing_factor"] == (1.0, 3.0)
    fine = contrastive_view_settings(bands="gri", size=40, pixel_scale=0.168, asinh_scale=[1] * 3)
    worst = fine["seeing_factor"][1]
    assert 1.0 < worst < 3.0
    half = kernel_half_width((worst**2 - 1) ** 0.5, 0.168, profile="gaussian")
    assert half <= contrastive_view_size(40) - 1


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
    assert _train(store, config, run, "cae", "--steps", "2", "--resume") == 2
    assert "run/last.pt: no checkpoint to resume from" in capsys.readouterr().err
    assert _train(store, config, run, "cae", "--steps", "2") == 0
    other = tmp_path / "other.toml"
    other.write_text(config.read_text().replace("latent_dim = 6", "latent_dim = 5"))
    assert _train(store, other, run, "cae", "--steps", "4", "--resume") == 2
    err = capsys.readouterr().err
    assert "was trained with [model] latent_dim = 6, now 5" in err
    s = small_survey
    brighter = write_store(tmp_path / "brighter.h5", 3 * s.images, s.table, bands=s.bands,
                           pixel_scale=s.pixel_scale)  # fmt: skip
    assert _train(brighter, config, run, "cae", "--steps", "4", "--resume") == 2
    assert "was trained on other cutouts (normalisation scale" in capsys.readouterr().err
    assert _train(store, config, run, "cae", "--steps", "4", "--resume") == 0  # the same: fine


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("batch_size = true", "batch_size must be a positive integer; got True"),
        ("checkpoint_every = -3", "checkpoint_every must be a positive number of steps"),
        ("lr = 1e30", r"lr must be a number in \[0, 10\]; got 1e\+30"),
        ('lr = "fast"', r"lr must be a number in \[0, 10\]; got 'fast'"),
        ("max_steps = 2.5", "max_steps must be a positive integer; got 2.5"),
        ("val_fraction = 1.0", r"val_fraction must be a number in \[0, 1\); got 1.0"),
    ],
)
def test_a_bad_training_setting_is_named_with_its_file(setting, message, tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(f"[training]\n{setting}\n")
    with pytest.raises(ValueError, match=rf"bad\.toml: config\['training'\]: {message}"):
        resolve_config(path)


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
