"""The lens search embedding with the shipped encoder (its own file: a whole run, on its own
pytest-xdist worker)."""

import numpy as np

from astrounsup.io import write_store
from astrounsup.latent import read_latents
from astrounsup.pipeline import run_lens_search
from astrounsup.training import PRETRAINED, load_pretrained


def test_the_search_embeds_with_the_shipped_encoder_untrained(small_survey, tmp_path):
    s = small_survey
    store = tmp_path / "s.h5"
    write_store(store, s.images[:40], s.table[:40], bands=s.bands, pixel_scale=s.pixel_scale)
    cfg = {"model": {"recipe": "simclr", "steps": 0, "init": "pretrained"},
           "cluster": {"k": 3, "labels_column": "is_lens"},
           "anomalies": {"methods": ["lof"], "n_neighbors": 5, "gallery": 0}}  # fmt: skip
    lines = []
    run_lens_search(store, tmp_path / "out", cfg, progress=False, log=lines.append)
    train_line = next(line for line in lines if line.startswith("train: "))
    assert train_line.startswith(f"train: simclr, 0 steps, from pretrained {PRETRAINED} (")
    latents, _, _ = read_latents(tmp_path / "out" / "latents.h5")
    expected = load_pretrained(store).embed(store, progress=False)
    np.testing.assert_allclose(latents, expected, rtol=1e-5, atol=1e-6)
    page = (tmp_path / "out" / "report" / "index.html").read_text()
    assert f"from pretrained {PRETRAINED}" in page
    # Nothing changed: every step is reused, the training included.
    again = run_lens_search(store, tmp_path / "out", cfg, progress=False, log=lines.append)
    assert "train" in again["reused"]


def test_a_five_band_survey_is_searched_with_its_g_r_i(small_survey, tmp_path):
    """The shipped encoder takes the g, r, i planes of a g, r, i, z, y store; the arc
    features and detectors see every band."""
    s = small_survey
    five = np.concatenate([s.images[:40], s.images[:40, 1:]], axis=1)  # z, y: copies of r, i
    store = tmp_path / "s5.h5"
    write_store(store, five, s.table[:40], bands=["g", "r", "i", "z", "y"],
                pixel_scale=s.pixel_scale)  # fmt: skip
    gri = tmp_path / "s3.h5"
    write_store(gri, s.images[:40], s.table[:40], bands=s.bands, pixel_scale=s.pixel_scale)
    cfg = {"model": {"recipe": "simclr", "steps": 0, "init": "pretrained"},
           "cluster": {"k": 3, "labels_column": "is_lens"},
           "anomalies": {"methods": ["lof"], "n_neighbors": 5, "gallery": 0}}  # fmt: skip
    run_lens_search(store, tmp_path / "out", cfg, progress=False, log=None)
    latents, _, _ = read_latents(tmp_path / "out" / "latents.h5")
    expected = load_pretrained(gri).embed(gri, progress=False)
    np.testing.assert_allclose(latents, expected, rtol=1e-5, atol=1e-6)
