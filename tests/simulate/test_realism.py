"""The ingredients that make the built-in survey look like a real coadd."""

import astropy.units as u
import numpy as np
import pytest

from astrounsup.simulate import REALISM, resample_noise, simulate_lens_survey
from astrounsup.simulate._scene import Components
from astrounsup.simulate.artefacts import cosmic_ray_spot, cosmic_ray_track, satellite_trail
from astrounsup.simulate.survey import _OFFSET_MAX_PX, _draw_artefacts, _light_artefact


@pytest.fixture(scope="module")
def survey():
    return simulate_lens_survey(400, seed=21, anomaly_fraction=0.1, nan_fraction=0.0,
                                progress=False)  # fmt: skip


def test_offsets_follow_their_distribution_and_the_light(star_survey):
    t = star_survey.table
    off = np.stack([t["offset_x"].to_value(u.arcsec), t["offset_y"].to_value(u.arcsec)]) / 0.263
    r = np.hypot(*off)
    # 1.5 px per axis, capped at 4 px, plus a 0.1 arcsec (0.4 px) centring error.
    assert r.max() <= _OFFSET_MAX_PX + 5 * 0.1 / 0.263
    assert np.std(off, axis=1) == pytest.approx([1.4, 1.4], abs=0.2)
    # The light is where the truth says: centroids of the bright stars.
    mags = t["mag"].to_value(u.mag)[:, 1]
    bright = np.nonzero((np.asarray(t["kind"]) == "star") & (mags < 19.5))[0]
    assert bright.size >= 5
    yy, xx = np.mgrid[:64, :64] - 31.5
    for i in bright:
        img = np.clip(star_survey.images[i, 1], 0, None)
        w = np.where(np.hypot(xx - off[0, i], yy - off[1, i]) < 8, img, 0.0)
        cx, cy = (w * xx).sum() / w.sum(), (w * yy).sum() / w.sum()
        assert np.hypot(cx - off[0, i], cy - off[1, i]) < 0.3


def test_neighbours_come_at_the_same_rate_for_every_kind(survey):
    t = survey.table
    counts = np.asarray(t["n_neighbors"])
    side = 64 * 0.263
    # 6.4e-3 objects per arcsec^2, less the disc of 2.5 arcsec kept clear of the object.
    expected = 6.4e-3 * (side**2 - np.pi * 2.5**2)
    assert counts.mean() == pytest.approx(expected, rel=0.15)
    kinds = np.asarray(t["kind"])
    for kind in ("lens", "red_galaxy", "disc_galaxy"):
        sel = counts[kinds == kind]
        # Poisson: the mean of m counts scatters by sqrt(rate / m).
        assert abs(sel.mean() - expected) < 4 * np.sqrt(expected / sel.size)
    off = simulate_lens_survey(30, seed=21, neighbors=False, progress=False)
    assert (off.table["n_neighbors"] == 0).all()


def test_neighbours_do_not_count_in_the_object_magnitude():
    a = simulate_lens_survey(40, seed=3, progress=False)
    b = simulate_lens_survey(40, seed=3, neighbors=False, progress=False)
    np.testing.assert_allclose(a.table["mag"].value, b.table["mag"].value)
    assert (a.table["n_neighbors"] > 0).any()


def test_resampled_noise_keeps_the_variance_and_correlates_adjacent_pixels():
    rng = np.random.default_rng(0)
    noise = rng.normal(0.0, 2.0, (4, 1, 128, 128))
    mix = np.array([0.0, 0.15, 0.3, 0.45])
    out = resample_noise(noise, mix)
    np.testing.assert_allclose(out.std(axis=(1, 2, 3)), 2.0, rtol=0.02)
    for k, a in enumerate(mix):
        img = out[k, 0]
        rho_x = np.corrcoef(img[:, :-1].ravel(), img[:, 1:].ravel())[0, 1]
        rho_y = np.corrcoef(img[:-1].ravel(), img[1:].ravel())[0, 1]
        expected = 2 * a / (1 + 2 * a**2)
        assert rho_x == pytest.approx(expected, abs=0.02)
        assert rho_y == pytest.approx(expected, abs=0.02)


def test_survey_noise_correlation_is_the_recorded_one(star_survey):
    t = star_survey.table
    img = star_survey.images[:, 1, :6, :].astype(np.float64)  # blank top rows
    measured = np.array([np.corrcoef(im[:, :-1].ravel(), im[:, 1:].ravel())[0, 1] for im in img])
    truth = np.asarray(t["noise_correlation"])
    assert truth.min() > 0.28
    assert truth.max() < 0.65
    assert np.mean(measured - truth) == pytest.approx(0.0, abs=0.02)
    assert np.corrcoef(measured, truth)[0, 1] > 0.7


def test_depth_follows_the_number_of_exposures(survey):
    t = survey.table
    n_exp = np.asarray(t["n_exposures"])
    sigma = t["noise_sigma"].to_value(u.nmgy)
    assert n_exp.min() >= 1
    assert 2 <= np.median(n_exp) <= 5
    assert n_exp.max() >= 8
    for j in range(3):
        slope = np.polyfit(np.log(n_exp[:, j]), np.log(sigma[:, j]), 1)[0]
        assert slope == pytest.approx(-0.5, abs=0.05)
    # Seeing differs from band to band by more than the old 3% chromatic scatter.
    fwhm = t["psf_fwhm"].to_value(u.arcsec)
    ratio = fwhm[:, 0] / fwhm[:, 2]
    assert np.std(np.log(ratio)) > 0.1
    flat = simulate_lens_survey(20, seed=2, variable_depth=False, progress=False)
    assert (flat.table["n_exposures"] == 4).all()


def test_lensed_sources_have_knots(survey):
    t = survey.table
    lens = np.asarray(t["is_lens"])
    knots = np.asarray(t["source_knots"])
    assert set(np.unique(knots[lens])) <= {1, 2, 3, 4, 5}
    assert (knots[~lens] == 0).all()
    mu = np.asarray(t["magnification"])[lens]
    assert np.isfinite(mu).all()
    assert (mu > 1).all()
    smooth = simulate_lens_survey(20, seed=2, clumpy_sources=False, progress=False)
    assert (smooth.table["source_knots"] == 0).all()


def test_artefact_draws_cover_partial_bands_segments_and_shapes():
    rng = np.random.default_rng(1)

    kinds = np.repeat(["satellite_trail", "cosmic_ray", "ghost"], 300)
    arts = _draw_artefacts(rng, kinds, ("g", "r", "i"), 64, 0.263, Components(3), True)
    trails = [arts[i] for i in range(300)]
    for a in trails:
        assert a["bands"] == "".join(b for b, p in zip("gri", a["peak"], strict=True) if p > 0)
        assert a["bands"]
    partial = np.mean([len(a["bands"]) < 3 for a in trails])
    assert 0.4 < partial < 0.8
    segmented = np.mean([bool(a["gaps"]) for a in trails])
    assert segmented == pytest.approx(0.4, abs=0.08)
    fwhm = [a["fwhm"] for a in trails]
    assert min(fwhm) < 0.7
    assert max(fwhm) > 2.7
    shapes = {h["shape"] for i in range(300, 600) for h in arts[i]["hits"]}
    assert shapes == {"point", "track", "worm", "spot"}
    assert all(len(arts[i]["bands"]) == 1 for i in range(300, 600))
    radii = [arts[i]["r_in"] for i in range(600, 900)]
    assert min(radii) < 1.5
    assert max(radii) > 9.5


def test_a_trail_absent_from_a_band_leaves_no_light_there():
    rng = np.random.default_rng(5)

    kinds = np.array(["satellite_trail"] * 40)
    arts = _draw_artefacts(rng, kinds, ("g", "r", "i"), 64, 0.263, Components(3), True)
    for art in arts.values():
        light = _light_artefact("satellite_trail", art, 64, 0.263)
        for j, b in enumerate("gri"):
            assert (light[j].max() > 0) == (b in art["bands"])


def test_gaps_cut_a_trail_into_segments():
    whole = satellite_trail((64, 64), pixel_scale=0.263, angle=0.0, offset=0.0, fwhm=1.0,
                            peak=[1.0])  # fmt: skip
    cut = satellite_trail((64, 64), pixel_scale=0.263, angle=0.0, offset=0.0, fwhm=1.0,
                          peak=[1.0], gaps=[(0.0, 4.0)])  # fmt: skip
    centre_row = 31  # the trail runs along x through the centre
    x = (np.arange(64) - 31.5) * 0.263
    assert cut[0, centre_row, np.abs(x) < 0.5].max() < 0.05 * whole[0, centre_row].max()
    np.testing.assert_allclose(cut[0, :, np.abs(x) > 4.0], whole[0, :, np.abs(x) > 4.0],
                               rtol=0.02, atol=1e-6)  # fmt: skip


def test_cosmic_ray_shapes():
    worm = cosmic_ray_track((32, 32), row=16, col=4, angle=0.0, length=20, deposit=1.0,
                            curvature=0.15)  # fmt: skip
    rows = np.nonzero(worm.any(axis=1))[0]
    assert rows.size > 3  # it bends away from its starting row
    spot = cosmic_ray_spot((32, 32), row=10.0, col=10.0, radius=1.0, deposit=100.0)
    assert spot[10, 10] == 100.0
    assert 5 <= (spot > 0).sum() <= 13


def test_a_one_percent_lens_fraction():
    s = simulate_lens_survey(500, seed=4, lens_fraction=0.01, progress=False)
    t = s.table
    assert int(t["is_lens"].sum()) == 5
    lens = np.asarray(t["is_lens"])
    assert np.isfinite(t["theta_e"].value[lens]).all()
    assert np.isnan(t["theta_e"].value[~lens]).all()
    assert "lenses: 5" in s.summary()


def test_every_switch_is_a_bool_and_all_off_is_the_clean_survey():
    for name in REALISM:
        with pytest.raises(ValueError, match=f"{name} must be True or False; got 'no'"):
            simulate_lens_survey(2, seed=1, **{name: "no"})
    clean = simulate_lens_survey(10, seed=1, progress=False, **dict.fromkeys(REALISM, False))
    t = clean.table
    assert (t["n_neighbors"] == 0).all()
    assert (t["noise_correlation"] == 0).all()
    assert (t["source_knots"] == 0).all()
    assert np.hypot(t["offset_x"].value, t["offset_y"].value).max() < 0.5
    assert all(t.meta[name] is False for name in REALISM)


def test_arc_snr_is_set_for_lenses_and_follows_the_lensed_flux(survey):
    t = survey.table
    lens = np.asarray(t["is_lens"])
    snr = np.asarray(t["arc_snr"])
    assert np.isfinite(snr[lens]).all()
    assert np.isnan(snr[~lens]).all()
    assert np.median(snr[lens]) > 10
    # Brighter sources (per unit magnification) give higher S/N.
    src = t["source_mag"].to_value(u.mag)[lens, 1]
    mu = np.asarray(t["magnification"])[lens]
    flux = 10 ** (-0.4 * src) * mu
    assert np.corrcoef(np.log(flux), np.log(snr[lens]))[0, 1] > 0.6
