import numpy as np
import pytest
import torch

from astrounsup.models import ColourResiduals, SimCLR
from astrounsup.training import TrainedModel, build_model, train

SCALE, SOFT = [0.5, 0.7, 0.9], 2.0


def _front(**kw):
    return ColourResiduals(3, **kw).calibrate(
        scale=SCALE, softening=SOFT, core_radius=3.0, centre_radius=4.0
    )


def _stretch(flux):
    scale = torch.tensor(SCALE)[:, None, None]
    return torch.asinh(flux / SOFT) / scale


def _reference(flux, red=2, core=3.0, centre=4.0):
    """The residuals written out with NumPy, cutout by cutout, in noise units."""
    flux = np.asarray(flux, dtype=np.float64)
    n, bands, ny, nx = flux.shape
    yy, xx = np.mgrid[:ny, :nx]
    cy, cx = (ny - 1) / 2, (nx - 1) / 2
    out = np.empty((n, bands - 1, ny, nx))
    for k in range(n):
        r = flux[k, red]
        padded = np.pad(r, 1, constant_values=np.nan)
        windows = np.stack([padded[dy : dy + ny, dx : dx + nx] for dy in range(3)
                            for dx in range(3)])  # fmt: skip
        smooth = np.nanmean(windows, axis=0)
        smooth[(yy - cy) ** 2 + (xx - cx) ** 2 > centre**2] = -np.inf
        py, px = np.unravel_index(np.argmax(smooth), smooth.shape)
        w = np.exp(-0.5 * ((yy - py) ** 2 + (xx - px) ** 2) / core**2)
        for j, b in enumerate(c for c in range(bands) if c != red):
            a = (w * flux[k, b] * r).sum() / ((w * r * r).sum() + w.sum())
            out[k, j] = flux[k, b] - a * r
    return out


def _scene(seed=0, n=4, size=33):
    """Red galaxies of different colours, each with a blue arc at its own angle, and noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    flux = rng.normal(size=(n, 3, size, size))
    for k in range(n):
        dy, dx = rng.integers(-2, 3, size=2)
        galaxy = 200 * np.exp(-((yy - dy) ** 2 + (xx - dx) ** 2) / 10.0)
        angle = rng.uniform(0, 2 * np.pi)
        r, phi = np.hypot(yy - dy, xx - dx), np.arctan2(yy - dy, xx - dx)
        arc = 30 * np.exp(-((r - 8) ** 2) / 2.0 - (np.angle(np.exp(1j * (phi - angle)))) ** 2)
        colour = rng.uniform(0.2, 0.6, size=2)
        flux[k, 0] += colour[0] * galaxy + arc
        flux[k, 1] += colour[1] * galaxy + 0.5 * arc
        flux[k, 2] += galaxy
    return flux


def test_residuals_match_a_numpy_reference():
    flux = _scene()
    out = _front()(_stretch(torch.tensor(flux, dtype=torch.float32)))
    assert out.shape == (4, 5, 33, 33)
    got = SOFT * np.sinh(out[:, 3:].double().numpy() * np.array(SCALE[:2])[:, None, None])
    np.testing.assert_allclose(got, _reference(flux), rtol=1e-3, atol=1e-2)
    # The bands pass through unchanged.
    torch.testing.assert_close(out[:, :3], _stretch(torch.tensor(flux, dtype=torch.float32)))


def test_the_galaxy_goes_and_the_arc_stays():
    flux = _scene(seed=3, n=1)
    res = _reference(flux)[0]
    arc_pixels = flux[0, 0] - flux[0, 2] * 0.6 > 10
    core = np.zeros(flux.shape[-2:], dtype=bool)
    core[14:19, 14:19] = True
    assert np.abs(res[0][core & ~arc_pixels]).mean() < 0.3 * np.abs(flux[0, 0][core]).mean()
    assert res[0][arc_pixels].mean() > 15


def test_quarter_turns_turn_the_residuals():
    flux = torch.tensor(_scene(seed=5), dtype=torch.float32)
    x = _stretch(flux)
    front = _front()
    turned = front(torch.rot90(x, 1, dims=(-2, -1)))
    want = torch.rot90(front(x), 1, dims=(-2, -1))
    torch.testing.assert_close(turned, want, atol=1e-4, rtol=1e-4)


def test_another_red_band():
    flux = _scene(seed=1)
    out = _front(red=0)(_stretch(torch.tensor(flux, dtype=torch.float32)))
    got = SOFT * np.sinh(out[:, 3:].double().numpy() * np.array(SCALE[1:])[:, None, None])
    np.testing.assert_allclose(got, _reference(flux, red=0), rtol=1e-3, atol=1e-2)


def test_bad_arguments():
    with pytest.raises(ValueError, match="integer number of bands >= 2; got 1"):
        ColourResiduals(1)
    with pytest.raises(ValueError, match=r"red must be a band index in \[-3, 2\]; got 3"):
        ColourResiduals(3, red=3)
    with pytest.raises(ValueError, match=r"scale must be 3 positive numbers; got \[1.0, 1.0\]"):
        ColourResiduals(3).calibrate(scale=[1, 1], softening=2, core_radius=3, centre_radius=4)
    with pytest.raises(ValueError, match="core_radius must be a number > 0; got 0"):
        ColourResiduals(3).calibrate(scale=[1] * 3, softening=2, core_radius=0, centre_radius=4)
    with pytest.raises(ValueError, match=r"expect \(B, 3, ny, nx\); got \(2, 2, 8, 8\)"):
        _front()(torch.zeros(2, 2, 8, 8))
    with pytest.raises(ValueError, match="colour_residuals must be true or false; got 'yes'"):
        SimCLR(3, size=32, colour_residuals="yes")


def test_the_recipe_calibrates_the_front_and_picks_the_reddest_band():
    model, _, _ = build_model(
        "simclr", bands=("i", "r", "g"), size=48, pixel_scale=0.2, asinh_scale=[1.5, 2.0, 2.5],
        asinh_softening=3.0, model_config={"colour_residuals": True, "widths": [4, 8]},
    )  # fmt: skip
    front = model.inputs
    assert model.config["red_band"] == 0
    assert front.red == 0
    torch.testing.assert_close(front.scale, torch.tensor([1.5, 2.0, 2.5]))
    assert float(front.softening) == 3.0
    assert float(front.core_radius) == pytest.approx(0.8 / 0.2)
    assert model.encoder.bands == 5
    plain, _, _ = build_model("simclr", bands=("g", "r", "i"), size=48, pixel_scale=0.2,
                              asinh_scale=[1.0] * 3, model_config={"widths": [4, 8]})  # fmt: skip
    assert plain.inputs is None
    assert plain.encoder.bands == 3
    assert not any(k.startswith("inputs.") for k in plain.state_dict())


def test_a_trained_model_keeps_its_residuals(small_survey, tmp_path):
    """Saved and loaded, the model embeds the same; its planes are named."""
    s = small_survey
    cfg = {"model": {"latent_dim": 4, "projection_dim": 4, "widths": [4, 8],
                     "colour_residuals": True},
           "training": {"max_steps": 2, "batch_size": 8}}  # fmt: skip
    fitted = train(s.images[:24], model="simclr", config=cfg, bands=s.bands,
                   pixel_scale=s.pixel_scale, progress=False, out_dir=tmp_path)  # fmt: skip
    assert fitted.input_planes == ["g", "r", "i", "g-a*i", "r-a*i"]
    again = TrainedModel.load(tmp_path / "last.pt")
    assert again.input_planes == fitted.input_planes
    torch.testing.assert_close(again.model.inputs.scale, fitted.model.inputs.scale)
    a = fitted.embed(s.images[:24], progress=False)
    b = again.embed(s.images[:24], progress=False)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert np.isfinite(a).all()


def test_fine_tuning_recalibrates_the_residuals_to_the_new_data(small_survey):
    """Weights started from a model of other data: the residuals take this data's stretch
    (the stretch is in noise units: blank sky stretches unlike galaxies)."""
    s = small_survey
    cfg = {"model": {"latent_dim": 4, "projection_dim": 4, "widths": [4, 8],
                     "colour_residuals": True},
           "training": {"max_steps": 1, "batch_size": 8}}  # fmt: skip
    first = train(s.images[:24], model="simclr", config=cfg, bands=s.bands,
                  pixel_scale=s.pixel_scale, progress=False)  # fmt: skip
    blank = np.random.default_rng(2).normal(size=(24, 3, 64, 64)).astype("f4")  # sky alone
    tuned = train(blank, model="simclr", config=cfg, bands=s.bands, pixel_scale=s.pixel_scale,
                  progress=False, init=first)  # fmt: skip
    torch.testing.assert_close(
        tuned.model.inputs.scale, torch.tensor(tuned.normalizer.scale_, dtype=torch.float32)
    )
    assert not torch.allclose(tuned.model.inputs.scale, first.model.inputs.scale)
