"""Pretraining on built-in surveys made on the fly: settings per survey, resuming, refusals."""

import json

import numpy as np
import pytest

from astrounsup.pipeline import PRETRAIN_DEFAULTS, pretrain_encoder, pretrain_survey_settings

TINY = {"n": 24, "steps": 2, "size": 48, "seed": 3}
TINY_MODEL = {"latent_dim": 4, "widths": [4, 8], "projection_dim": 4}
TINY_TRAINING = {"batch_size": 8, "warmup_steps": 0, "eval_every": 1}
MODEL = {"recipe": "simclr", "config": {"model": TINY_MODEL, "training": TINY_TRAINING}}


def test_each_survey_draws_its_scale_and_lens_fraction_from_the_ranges():
    draws = [pretrain_survey_settings({"seed": 1}, i) for i in range(200)]
    scales = np.array([d["pixel_scale"] for d in draws])
    fractions = np.array([d["lens_fraction"] for d in draws])
    assert scales.min() >= 0.168
    assert scales.max() <= 0.30
    assert fractions.min() >= 0.01
    assert fractions.max() <= 0.5
    # Log-uniform: as many below the geometric mean of the range as above it.
    assert 0.4 < np.mean(fractions < np.sqrt(0.01 * 0.5)) < 0.6
    assert len({d["seed"] for d in draws}) == 200
    assert pretrain_survey_settings({"seed": 1}, 7) == draws[7]
    assert pretrain_survey_settings({"seed": 2}, 7) != draws[7]
    assert draws[0]["n"] == PRETRAIN_DEFAULTS["n"]


def test_unknown_setting_is_named():
    with pytest.raises(ValueError, match=r"pretrain: unknown settings \['epochs'\]"):
        pretrain_survey_settings({"epochs": 3}, 0)


def test_goes_on_from_the_last_finished_survey(tmp_path):
    first = pretrain_encoder(TINY, tmp_path, model=MODEL, chunks=2, progress=False)
    record = json.loads((tmp_path / "progress.json").read_text())
    assert [s["index"] for s in record["surveys"]] == [0, 1]
    assert record["surveys"][1]["pixel_scale"] == pretrain_survey_settings(TINY, 1)["pixel_scale"]
    assert first.init is not None  # the second survey started from the first's encoder
    assert first.steps == 2
    again = pretrain_encoder(TINY, tmp_path, model=MODEL, chunks=3, progress=False)
    assert [s["index"] for s in again.progress["surveys"]] == [0, 1, 2]
    # The first two surveys were not trained again.
    assert again.progress["surveys"][:2] == record["surveys"]
    same = pretrain_encoder(TINY, tmp_path, model=MODEL, chunks=3, progress=False)
    np.testing.assert_array_equal(
        same.model.state_dict()["encoder.head.weight"].numpy(),
        again.model.state_dict()["encoder.head.weight"].numpy(),
    )


def test_a_folder_of_another_run_is_refused(tmp_path):
    pretrain_encoder(TINY, tmp_path, model=MODEL, chunks=1, progress=False)
    with pytest.raises(ValueError, match=r"\[pretrain\] n = 24 \(now 32\)"):
        pretrain_encoder(TINY | {"n": 32}, tmp_path, model=MODEL, chunks=1, progress=False)
    with pytest.raises(ValueError, match="another \\[model\\] table"):
        pretrain_encoder(TINY, tmp_path, model=MODEL | {"config": {}}, chunks=1, progress=False)


def test_a_new_run_from_weights_continues_their_survey_list(tmp_path):
    first = pretrain_encoder(TINY, tmp_path / "a", model=MODEL, chunks=1, progress=False)
    first.card = {"name": "test", "steps": 2, "surveys": first.progress["surveys"]}
    second = pretrain_encoder(TINY, tmp_path / "b", model=MODEL, chunks=2, init=first,
                              progress=False)  # fmt: skip
    assert [s["index"] for s in second.progress["surveys"]] == [0, 1]
    with pytest.raises(ValueError, match="chunks must be >= 1"):
        pretrain_encoder(TINY, tmp_path / "c", model=MODEL, chunks=0, progress=False)
