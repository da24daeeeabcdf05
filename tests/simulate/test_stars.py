import itertools

import astropy.units as u
import numpy as np
import pytest
from scipy.stats import spearmanr

from astrounsup.simulate.stars import STAGES, gaia_absolute_magnitudes, simulate_stars


@pytest.fixture(scope="module")
def stars():
    return simulate_stars(6000, seed=7, spectra=True)


def _ms_locus(t):
    """Median M_G of the main sequence in bins of colour."""
    ms = np.asarray(t["stage"]) == "main_sequence"
    c = t["bp_rp_true"].to_value(u.mag)[ms]
    m = t["abs_g_true"].to_value(u.mag)[ms]
    edges = np.quantile(c, np.linspace(0, 1, 25))
    mid = 0.5 * (edges[1:] + edges[:-1])
    med = np.array([np.median(m[(c >= a) & (c <= b)]) for a, b in itertools.pairwise(edges)])
    return mid, med, c, m


class TestSimulateStars:
    def test_columns_and_stages(self, stars):
        for col in (
            "source_id",
            "ra",
            "dec",
            "parallax",
            "parallax_error",
            "phot_g_mean_mag",
            "phot_bp_mean_mag",
            "phot_rp_mean_mag",
            "bp_rp",
            "teff",
            "logg",
            "mass",
            "stage",
        ):
            assert col in stars.colnames
        assert stars["parallax"].unit == u.mas
        counts = {s: int((np.asarray(stars["stage"]) == s).sum()) for s in STAGES}
        for s, share in STAGES.items():
            assert counts[s] == pytest.approx(share * 6000, abs=1)
        assert len(set(stars["source_id"])) == 6000

    def test_main_sequence_is_a_tight_monotonic_locus(self, stars):
        mid, med, c, m = _ms_locus(stars)
        assert spearmanr(c, m).statistic > 0.95
        assert np.all(np.diff(med) > 0)
        resid = m - np.interp(c, mid, med)
        assert np.std(resid) < 0.25

    def test_white_dwarfs_below_giants_above(self, stars):
        mid, med, _, _ = _ms_locus(stars)
        stage = np.asarray(stars["stage"])
        c = stars["bp_rp_true"].to_value(u.mag)
        m = stars["abs_g_true"].to_value(u.mag)
        locus = np.interp(c, mid, med)
        assert np.all(m[stage == "white_dwarf"] > locus[stage == "white_dwarf"] + 3)
        assert np.all(m[stage == "red_giant"] < locus[stage == "red_giant"] - 2)

    def test_binaries_sit_0p75_mag_above(self, stars):
        mid, med, _, _ = _ms_locus(stars)
        b = np.asarray(stars["stage"]) == "binary"
        c = stars["bp_rp_true"].to_value(u.mag)[b]
        offset = np.interp(c, mid, med) - stars["abs_g_true"].to_value(u.mag)[b]
        inside = (c > mid[1]) & (c < mid[-2])
        assert np.median(offset[inside]) == pytest.approx(0.75, abs=0.1)

    def test_observables_consistent_with_truth(self, stars):
        d = stars["distance"].to_value(u.pc)
        pull = (stars["parallax"].to_value(u.mas) - 1000 / d) / stars["parallax_error"].value
        assert np.std(pull) == pytest.approx(1.0, abs=0.05)
        g = stars["phot_g_mean_mag"].value
        model = stars["abs_g_true"].value + 5 * np.log10(d / 10) + 0.789 * stars["a_v"].value
        assert np.median(np.abs(g - model)) < 0.01

    def test_temperature_orders_colour(self, stars):
        ms = np.asarray(stars["stage"]) == "main_sequence"
        assert spearmanr(stars["teff"].value[ms], stars["bp_rp_true"].value[ms]).statistic < -0.99

    def test_spectra_follow_wien(self, stars):
        spec = stars["spectrum"].value
        wave = np.asarray(stars.meta["spectrum_wavelength_nm"])
        assert spec.shape == (6000, wave.size)
        blue = spec[:, wave < 500].mean(axis=1) / spec[:, wave > 800].mean(axis=1)
        # Extinction reddens too, so test the stars with little of it.
        clear = stars["a_v"].value < 0.05
        assert spearmanr(stars["teff"].value[clear], blue[clear]).statistic > 0.95

    def test_deterministic(self):
        a = simulate_stars(50, seed=3)
        b = simulate_stars(50, seed=3)
        for col in a.colnames:
            np.testing.assert_array_equal(np.asarray(a[col]), np.asarray(b[col]))

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"n": 0}, "n must be a positive integer"),
            ({"n": 10, "max_distance": 1.0}, "max_distance must be a number > 10 pc"),
            ({"n": 10, "g_limit": "bright"}, "g_limit must be a number"),
        ],
    )
    def test_bad_arguments(self, kwargs, match):
        n = kwargs.pop("n")
        with pytest.raises(ValueError, match=match):
            simulate_stars(n, **kwargs)


def _photon_counts(teff, band, power=None):
    """Photons counted in a Gaia-like ``band`` from a blackbody (or, with ``power``, from a
    spectrum proportional to wavelength**power), by adaptive quadrature with CODATA h, c, k."""
    from scipy.constants import c, h, k
    from scipy.integrate import quad

    lo, hi, edge = {"G": (340, 1000, 25), "BP": (340, 660, 15), "RP": (640, 1000, 15)}[band]

    def response(nm):
        return 1 / (1 + np.exp(-(nm - lo) / edge)) / (1 + np.exp((nm - hi) / edge))

    def photons(nm):
        if power is not None:
            return nm**power
        x = h * c / (nm * 1e-9 * k * teff)
        return nm**-4 / np.expm1(x)  # B_lambda * lambda / (h c), up to a constant

    return quad(lambda nm: photons(nm) * response(nm), 300, 1100, limit=200)[0]


class TestGaiaPhotometry:
    @pytest.mark.parametrize("teff", [3200.0, 4500.0, 6500.0, 9000.0, 15000.0])
    def test_colours_follow_plancks_law(self, teff):
        """BP - RP relative to the Sun's, where the zero points cancel, against a direct
        integration of Planck's law over the bands."""
        m = gaia_absolute_magnitudes([teff, 5772.0], [1.0, 1.0])
        colour = m["BP"] - m["RP"]
        ratio = [_photon_counts(t, "BP") / _photon_counts(t, "RP") for t in (teff, 5772.0)]
        expected = -2.5 * np.log10(ratio[0] / ratio[1])
        assert colour[0] - colour[1] == pytest.approx(expected, abs=2e-3)

    def test_hot_stars_reach_the_rayleigh_jeans_colour(self):
        """Far on the hot side a blackbody's photon spectrum goes as lambda**-3, so BP - RP
        tends to a limit set by the bands alone."""
        m = gaia_absolute_magnitudes([1e6, 5772.0], [1.0, 1.0])
        ratio_rj = _photon_counts(None, "BP", power=-3) / _photon_counts(None, "RP", power=-3)
        ratio_sun = _photon_counts(5772.0, "BP") / _photon_counts(5772.0, "RP")
        limit = -2.5 * np.log10(ratio_rj / ratio_sun)
        colour = (m["BP"] - m["RP"])[0] - (m["BP"] - m["RP"])[1]
        assert colour == pytest.approx(limit, abs=0.02)
        assert colour < -0.5  # much bluer than the Sun

    def test_hotter_is_bluer_and_brighter_is_brighter(self):
        m = gaia_absolute_magnitudes([3500.0, 5000.0, 9000.0], [1.0, 1.0, 1.0])
        colour = m["BP"] - m["RP"]
        assert np.all(np.diff(colour) < 0)
        m2 = gaia_absolute_magnitudes([5000.0], [100.0])
        assert m2["G"][0] == pytest.approx(m["G"][1] - 5.0, abs=1e-9)
