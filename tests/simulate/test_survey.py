import astropy.units as u
import numpy as np
import pytest
import torch

from astrounsup.instrument import flux_to_mag
from astrounsup.simulate import (
    ANOMALY_KINDS,
    NON_LENS_KINDS,
    SimulatedSurvey,
    simulate_lens_survey,
)
from astrounsup.simulate.survey import _render_batch

from ..test_instrument import fitted_moffat_fwhm


class TestSimulateLensSurvey:
    def test_shapes_and_columns(self, small_survey):
        s = small_survey
        assert isinstance(s, SimulatedSurvey)
        assert s.images.shape == (60, 3, 64, 64)
        assert s.images.dtype == np.float32
        assert s.bands == ("g", "r", "i")
        t = s.table
        for col in (
            "object_id",
            "ra",
            "dec",
            "kind",
            "is_lens",
            "is_anomaly",
            "theta_e",
            "psf_fwhm",
            "has_nan",
            "noise_sigma",
            "mag",
            "magnification",
        ):
            assert col in t.colnames
        assert t["psf_fwhm"].shape == (60, 3)
        assert t["psf_fwhm"].unit == u.arcsec
        assert t["ra"].unit == u.deg
        assert len(set(t["object_id"])) == 60

    def test_counts_follow_fractions(self, small_survey):
        t = small_survey.table
        assert int(t["is_lens"].sum()) == 30
        assert int(t["is_anomaly"].sum()) == 6
        kinds = set(np.asarray(t["kind"]))
        assert kinds <= {"lens", *NON_LENS_KINDS, *ANOMALY_KINDS}
        np.testing.assert_array_equal(t["is_lens"], np.asarray(t["kind"]) == "lens")
        np.testing.assert_array_equal(t["is_anomaly"], np.isin(t["kind"], ANOMALY_KINDS))

    def test_lens_truth(self, small_survey):
        t = small_survey.table
        lens = np.asarray(t["is_lens"])
        te = t["theta_e"].to_value(u.arcsec)
        assert np.all((te[lens] >= 0.8) & (te[lens] <= 2.5))
        assert np.all(np.isnan(te[~lens]))
        mu = np.asarray(t["magnification"])
        # A source inside the Einstein radius of an isothermal lens is magnified.
        assert np.all(mu[lens] > 1.0)
        assert np.all(np.isnan(mu[~lens]))

    def test_nan_flags_match_pixels(self, small_survey):
        has_nan = np.isnan(small_survey.images).any(axis=(1, 2, 3))
        np.testing.assert_array_equal(small_survey.table["has_nan"], has_nan)
        assert has_nan.any()
        assert np.isfinite(small_survey.images[~has_nan]).all()

    def test_deterministic_for_a_seed(self, small_survey):
        again = simulate_lens_survey(60, seed=11, anomaly_fraction=0.1, nan_fraction=0.1)
        np.testing.assert_array_equal(again.images, small_survey.images)
        for col in small_survey.table.colnames:
            np.testing.assert_array_equal(
                np.asarray(again.table[col]), np.asarray(small_survey.table[col])
            )

    def test_other_seed_differs(self, small_survey):
        other = simulate_lens_survey(60, seed=12, anomaly_fraction=0.1, nan_fraction=0.1)
        assert not np.array_equal(np.nan_to_num(other.images), np.nan_to_num(small_survey.images))

    def test_unseeded_survey_records_its_seed(self):
        first = simulate_lens_survey(4, seed=None)
        again = simulate_lens_survey(4, seed=int(first.table.meta["seed"]))
        np.testing.assert_array_equal(np.nan_to_num(first.images), np.nan_to_num(again.images))

    def test_provenance(self, small_survey):
        meta = small_survey.table.meta
        assert meta["step"] == "astrounsup.simulate.simulate_lens_survey"
        assert {"astrounsup_version", "date", "versions"} <= set(meta)
        assert meta["seed"] == "11"
        assert meta["bands"] == ["g", "r", "i"]
        assert meta["flux_unit"] == "nmgy"

    def test_blank_sky_noise_matches_truth(self, star_survey):
        """Corners of star cutouts are blank: their variance is the recorded sky noise."""
        t = star_survey.table
        stars = np.asarray(t["kind"]) == "star"
        img = star_survey.images[stars]
        border = np.concatenate(
            [
                img[..., :6, :].reshape(*img.shape[:2], -1),
                img[..., -6:, :].reshape(*img.shape[:2], -1),
            ],
            axis=-1,
        )
        measured = border.var(axis=(0, 2))
        expected = np.mean(t["noise_sigma"].to_value(u.nmgy)[stars] ** 2, axis=0)
        np.testing.assert_allclose(measured, expected, rtol=0.05)

    def test_star_photometry_matches_magnitude(self, star_survey):
        """Summed pixels of a star = 10**(0.4 (22.5 - mag)), within noise and truncation."""
        t = star_survey.table
        stars = np.nonzero(np.asarray(t["kind"]) == "star")[0]
        flux = star_survey.images[stars].sum(axis=(-1, -2))
        expected = 10 ** (0.4 * (22.5 - t["mag"].to_value(u.mag)[stars]))
        # The sum of correlated noise: per axis the kernel (a, 1, a) / sqrt(1 + 2 a^2)
        # multiplies the standard deviation of a sum by (1 + 2 a) / sqrt(1 + 2 a^2).
        rho = np.asarray(t["noise_correlation"])[stars]
        a = (1 - np.sqrt(1 - 2 * rho**2)) / (2 * np.maximum(rho, 1e-12))
        boost = (1 + 2 * a) ** 2 / (1 + 2 * a**2)
        sigma = t["noise_sigma"].to_value(u.nmgy)[stars] * 64 * boost[:, None]
        pull = (flux - expected) / np.sqrt(sigma**2 + (0.01 * expected) ** 2)
        assert np.abs(pull).max() < 5
        assert np.median(flux / expected) == pytest.approx(1.0, abs=0.01)

    def test_star_psf_fwhm_matches_truth(self, star_survey):
        t = star_survey.table
        mags = t["mag"].to_value(u.mag)[:, 1]
        bright = np.nonzero((np.asarray(t["kind"]) == "star") & (mags < 19.0))[0][:8]
        assert bright.size >= 4
        for i in bright:
            for j in range(3):
                stamp = star_survey.images[i, j, 20:44, 20:44].astype(np.float64)
                fwhm = fitted_moffat_fwhm(stamp, 0.263)
                assert fwhm == pytest.approx(t["psf_fwhm"][i, j].to_value(u.arcsec), rel=0.05)

    def test_magnitudes_recorded(self, small_survey):
        t = small_survey.table
        mag = t["mag"].to_value(u.mag)
        assert np.isfinite(mag).all()
        lens = np.asarray(t["is_lens"])
        # Lensed sources are blue: the source is bluer in g-i than its red lens.
        src = t["source_mag"].to_value(u.mag)[lens]
        assert np.median(src[:, 0] - src[:, 2]) < np.median(mag[lens, 0] - mag[lens, 2])

    def test_lens_light_has_extra_blue_flux_near_einstein_radius(self):
        """Lenses and the same red galaxies differ by blue light around theta_E."""
        s = simulate_lens_survey(200, seed=3, anomaly_fraction=0.0, nan_fraction=0.0)
        t = s.table
        yy, xx = np.mgrid[:64, :64]
        r = np.hypot(xx - 31.5, yy - 31.5) * 0.263
        annulus = (r > 0.6) & (r < 3.0)
        g_minus_i = flux_to_mag(s.images[:, 0][:, annulus].sum(-1)) - flux_to_mag(
            s.images[:, 2][:, annulus].sum(-1)
        )
        kinds = np.asarray(t["kind"])
        assert (
            np.nanmedian(g_minus_i[kinds == "lens"])
            < np.nanmedian(g_minus_i[kinds == "red_galaxy"]) - 0.2
        )

    def test_other_bands_and_sizes(self):
        s = simulate_lens_survey(6, bands=("r", "z", "Y"), size=33, pixel_scale=0.2, seed=2)
        assert s.images.shape == (6, 3, 33, 33)
        assert np.isfinite(s.images[~np.asarray(s.table["has_nan"])]).all()

    def test_summary(self, small_survey):
        text = small_survey.summary()
        assert "60 cutouts" in text
        assert "lenses: 30" in text

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"n": 0}, "n must be a positive integer"),
            ({"n": -3}, "n must be a positive integer"),
            ({"n": 2.5}, "n must be a positive integer"),
            ({"bands": ("g", "q")}, r"bands must be .* \(unknown: \['q'\]\)"),
            ({"bands": ()}, "bands must be a non-empty sequence"),
            ({"bands": ("g", "g")}, "bands must not repeat"),
            ({"size": 12}, "size must be an integer >= 26 px"),
            ({"pixel_scale": 0.0}, r"pixel_scale must be in \(0, 1\]"),
            ({"lens_fraction": 1.5}, r"lens_fraction must be in \[0, 1\]"),
            ({"anomaly_fraction": -0.1}, r"anomaly_fraction must be in \[0, 1\]"),
            ({"nan_fraction": 2.0}, r"nan_fraction must be in \[0, 1\]"),
            (
                {"lens_fraction": 0.7, "anomaly_fraction": 0.4},
                "lens_fraction \\+ anomaly_fraction must be <= 1",
            ),
        ],
    )
    def test_bad_arguments(self, kwargs, match):
        args = {"n": 4, "seed": 0} | kwargs
        n = args.pop("n")
        with pytest.raises(ValueError, match=match):
            simulate_lens_survey(n, **args)

    def test_bad_seed(self):
        with pytest.raises(TypeError, match="seed must be a non-negative integer"):
            simulate_lens_survey(4, seed="abc")


@pytest.mark.needs_cuda
def test_cuda_rendering_matches_cpu():
    s = simulate_lens_survey(8, seed=1)
    assert s.images.shape[0] == 8
    from astrounsup.simulate import REALISM
    from astrounsup.simulate.survey import _assign_kinds, _draw_scene

    rng = np.random.default_rng(0)
    kinds = _assign_kinds(rng, 16, 0.5, 0.0)
    options = dict.fromkeys(REALISM, True)
    comps, lens, *_ = _draw_scene(rng, kinds, ("g", "r", "i"), 64, 0.263, options, rng)
    fwhm = np.full((16, 3), 1.0)
    cpu, mu_cpu, _ = _render_batch(0, 16, comps, lens, fwhm, 64, 0.263, torch.device("cpu"))
    gpu, mu_gpu, _ = _render_batch(0, 16, comps, lens, fwhm, 64, 0.263, torch.device("cuda"))
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(mu_gpu, mu_cpu, rtol=1e-3)
