"""Training never dies on pixels without a measurable noise, and runs on real pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table

from astrounsup.io import write_store
from astrounsup.pipeline import embed_latents
from astrounsup.training import MODELS, train

TINY = {
    "model": {"latent_dim": 6, "widths": [8, 16]},
    "training": {"max_steps": 3, "batch_size": 8, "eval_every": 3, "lr": 0.003},
}
REALDATA = Path(__file__).resolve().parents[2].parent / "shared" / "realdata" / "hsc_scarlet"


def _check_trained(fitted, data, n, *, warned=None):
    assert len(fitted.history.loss) == TINY["training"]["max_steps"]
    assert np.isfinite(fitted.history.loss).all()
    if warned is None:
        z = fitted.embed(data, progress=False)
    else:  # cutouts with a band of one value are embedded, and said so
        with pytest.warns(UserWarning, match=warned):
            z = fitted.embed(data, progress=False)
    assert z.shape == (n, fitted.latent_dim)
    assert np.isfinite(z).all()


@pytest.fixture(scope="module")
def flat_store(small_survey, tmp_path_factory):
    """The small survey with cutouts whose borders have no spread among the good ones."""
    images = small_survey.images.copy()
    images[3] = np.round(images[3] * 0.0)  # flat and empty: a constant-padded stamp
    images[10, :, :8] = 0.0  # constant-padded edge
    images[10, :, -8:] = 0.0
    images[10, :, :, :8] = 0.0
    images[10, :, :, -8:] = 0.0
    images[17, 1] = np.where(np.abs(images[17, 1]) < 0.05, 0.0, images[17, 1])  # clipped sky
    path = tmp_path_factory.mktemp("flat") / "flat.h5"
    write_store(path, images, small_survey.table, bands=small_survey.bands,
                pixel_scale=small_survey.pixel_scale)  # fmt: skip
    return path


@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_recipe_trains_on_a_store_with_flat_borders(model, flat_store, small_survey):
    fitted = train(flat_store, model=model, config=TINY, progress=False)
    _check_trained(fitted, flat_store, len(small_survey),
                   warned=r"1 cutouts \(rows \[3\]\) have a band of one value")  # fmt: skip
    flags = fitted.dataset(flat_store).noise_flags()
    assert flags[[3, 10]].all()
    assert flags[17, 1]
    assert flags.any(axis=1).sum() == 3


def test_latents_mark_the_floored_cutouts(flat_store, tmp_path):
    fitted = train(flat_store, model="cae", config=TINY, progress=False)
    _, table = embed_latents(fitted, flat_store, out=tmp_path / "z.h5", progress=False)
    assert np.asarray(table["noise_floored"]).any(axis=1).nonzero()[0].tolist() == [3, 10, 17]
    from astrounsup.latent import read_latents

    _, again, _ = read_latents(tmp_path / "z.h5")
    np.testing.assert_array_equal(again["noise_floored"], table["noise_floored"])


@pytest.mark.parametrize("model", ["cae", "simclr", "vae"])
def test_a_radio_survey_with_background_exactly_zero(model):
    """Single band, the background clipped to 0: no cutout has a border noise."""
    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[:48, :48] - 23.5
    n = 24
    centre = rng.uniform(-6, 6, (n, 2))
    blob = np.exp(-0.5 * ((xx - centre[:, :1, None]) ** 2 + (yy - centre[:, 1:, None]) ** 2)
                  / rng.uniform(1.5, 4.0, (n, 1, 1)) ** 2)  # fmt: skip
    x = (blob * rng.uniform(1e-3, 1e-1, (n, 1, 1)))[:, None] + rng.normal(0, 2e-4, (n, 1, 48, 48))
    x = np.where(x < 1e-3, 0.0, x).astype(np.float32)
    with pytest.warns(UserWarning, match="robust scale of the signal"):
        fitted = train(x, model=model, config=TINY, bands=("r",), pixel_scale=1.8, progress=False)
    _check_trained(fitted, x, n)


def test_eight_bit_images_with_a_flat_background():
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:40, :40] - 19.5
    n = 24
    blob = np.exp(-0.5 * (xx**2 + yy**2) / rng.uniform(2.0, 6.0, (n, 1, 1)) ** 2)
    x = np.round(np.clip(blob[:, None] * rng.uniform(60, 250, (n, 3, 1, 1)) + 10, 0, 255))
    with pytest.warns(UserWarning, match="no cutout has a measurable border noise"):
        fitted = train(x.astype(np.uint8), model="cae", config=TINY, progress=False)
    _check_trained(fitted, x.astype(np.uint8), n)


def _hsc_stamps(size=40, step=4):
    """Overlapping ``size`` stamps of the real HSC scenes (5 bands), with their variance
    as the noise is, so the recipes see real noise, PSFs and blends."""
    stamps = []
    for name in ("hsc_cosmos_35.npz", "hsc_cosmos.npz"):
        with np.load(REALDATA / "data" / name) as scene:
            img = scene["images"].astype(np.float32)
            if "mask" in scene.files:
                img = np.where(scene["mask"] != 0, np.nan, img)
        ny, nx = img.shape[1:]
        for y0 in range(0, ny - size + 1, step):
            for x0 in range(0, nx - size + 1, step):
                stamps.append(img[:, y0 : y0 + size, x0 : x0 + size])
    return np.stack(stamps)


@pytest.mark.skipif(not REALDATA.is_dir(), reason=f"real HSC pixels not found at {REALDATA}")
@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_recipe_trains_on_real_hsc_pixels(model, tmp_path):
    from astrounsup.io import ingest, write_fits_cutouts

    stamps = _hsc_stamps()
    n = len(stamps)
    ids = [f"hsc{i:03d}" for i in range(n)]
    table = Table({"object_id": ids, "ra": np.full(n, 150.1), "dec": np.full(n, 2.2)})
    bands = ("g", "r", "i", "z", "Y")
    write_fits_cutouts(tmp_path / "fits", stamps, table, bands=bands, pixel_scale=0.168,
                       per_band_columns=())  # fmt: skip
    report = ingest(tmp_path / "fits", tmp_path / "hsc.h5", progress=False)
    # Stamps at the scenes' edges where a band is (almost) all masked are rejected.
    worst = (~np.isfinite(stamps)).reshape(n, len(bands), -1).mean(axis=2).max(axis=1)
    assert (report.n_written, report.n_rejected) == ((worst <= 0.5).sum(), (worst > 0.5).sum())
    assert report.n_written >= 30
    fitted = train(tmp_path / "hsc.h5", model=model, config=TINY, progress=False)
    _check_trained(fitted, tmp_path / "hsc.h5", report.n_written)
