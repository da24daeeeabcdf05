import re

import numpy as np
import pytest

from astrounsup.cli import main
from astrounsup.io import write_store
from astrounsup.training import (
    MODELS,
    build_model,
    default_config,
    describe_config,
    load_config,
    resolve_config,
)

from .conftest import embed_cli, flat_weights, train_cli


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
        status = train_cli(store, cfg, run, "cae", "--steps", "2")
        assert status == 2
        assert re.search(match, capsys.readouterr().err)
        assert not (run / "last.pt").exists()

    def test_embed_refuses_other_bands(self, small_survey, store, config, tmp_path, capsys):
        run = tmp_path / "run"
        train_cli(store, config, run, "cae", "--steps", "1")
        other = write_store(
            tmp_path / "o.h5",
            small_survey.images[:, :2],
            small_survey.table,
            bands=["g", "r"],
            pixel_scale=0.263,
        )
        assert embed_cli(str(run / "last.pt"), str(other), str(tmp_path / "l.h5")) == 2
        assert "differ from the training bands" in capsys.readouterr().err


def test_build_model_seeds_the_initial_weights_alone():
    import torch

    kw = {
        "bands": ("g", "r"),
        "size": 32,
        "pixel_scale": 0.263,
        "model_config": {"widths": (4, 8)},
    }
    torch.manual_seed(1)
    first = flat_weights(build_model("vae", seed=3, **kw)[0])
    state = torch.get_rng_state()
    torch.rand(5)  # other random work in between must not matter
    again = flat_weights(build_model("vae", seed=3, **kw)[0])
    assert torch.equal(first, again)
    assert not torch.equal(first, flat_weights(build_model("vae", seed=4, **kw)[0]))
    torch.manual_seed(1)
    build_model("vae", seed=3, **kw)
    assert torch.equal(torch.get_rng_state(), state)  # the global generator is untouched
    with pytest.raises(ValueError, match=r"seed must be an integer; got 1\.5"):
        build_model("vae", seed=1.5, **kw)


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


def test_survey_views_are_calibrated_on_the_survey_seeing():
    from astrounsup.training import contrastive_view_settings

    # 100 cutouts with seeing 0.8-1.6" in g, 0.1" better in r; one g value unknown.
    seeing = np.linspace(0.8, 1.6, 100)
    fwhm = np.stack([seeing, seeing - 0.1], axis=1)
    fwhm[3, 0] = np.nan
    got = contrastive_view_settings(
        bands="gr", size=64, pixel_scale=0.263, asinh_scale=[1] * 2, views="survey",
        psf_fwhm=fwhm,
    )  # fmt: skip
    np.testing.assert_allclose(got["fwhm_in"], [1.2, 1.1], atol=0.01)
    per_cutout = fwhm.mean(axis=1)
    per_cutout[3] = fwhm[3, 1]
    want = np.percentile(per_cutout, 95) / np.percentile(per_cutout, 5)
    assert got["seeing_factor"] == (1.0, round(want, 2))
    assert got["depth"] == "survey"
    assert got["ebv"] is None
    strong = contrastive_view_settings(bands="gr", size=64, pixel_scale=0.263, asinh_scale=[1] * 2)
    assert strong["depth"] == (1.0, 4.0)
    assert strong["ebv"] == (0.0, 0.1)
    # One seeing per cutout (no bands) is used for every band.
    one = contrastive_view_settings(
        bands="gr", size=64, pixel_scale=0.263, asinh_scale=[1] * 2, views="survey",
        psf_fwhm=seeing,
    )  # fmt: skip
    np.testing.assert_allclose(one["fwhm_in"], [1.2, 1.2])


@pytest.mark.parametrize("fwhm", [None, np.full((10, 3), np.nan), np.ones((10, 2))])
def test_survey_views_need_the_seeing(fwhm):
    from astrounsup.training import contrastive_view_settings

    with pytest.raises(ValueError, match="views 'survey' needs each cutout's PSF FWHM"):
        contrastive_view_settings(
            bands="gri", size=64, pixel_scale=0.263, asinh_scale=[1] * 3, views="survey",
            psf_fwhm=fwhm,
        )  # fmt: skip
    with pytest.raises(ValueError, match=r"views must be one of \['strong', 'survey'\]; got 'x'"):
        contrastive_view_settings(
            bands="gri", size=64, pixel_scale=0.263, asinh_scale=[1] * 3, views="x"
        )


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
