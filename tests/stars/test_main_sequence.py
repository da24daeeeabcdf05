import numpy as np
import pytest
from astropy import units as u
from astropy.table import QTable
from scipy.stats import spearmanr

from astrounsup.simulate import STAGE_PLACE, simulate_stars
from astrounsup.stars import MEMBERSHIPS, MainSequence, gaia_cmd, main_sequence_catalog


@pytest.fixture(scope="module")
def stars():
    return simulate_stars(30_000, seed=3)


class TestGaiaCMD:
    def test_absolute_magnitude_and_dereddening_by_hand(self):
        t = QTable(
            {
                "phot_g_mean_mag": [12.0, 15.0, 16.0] * u.mag,
                "bp_rp": [1.0, 1.5, 2.0] * u.mag,
                "parallax": [10.0, 1.0, -0.5] * u.mas,
                "parallax_over_error": [50.0, 5.0, -1.0],
                "ag_gspphot": [0.2, 0.1, 0.0] * u.mag,
                "ebpminrp_gspphot": [0.1, 0.05, 0.0] * u.mag,
            }
        )
        x, usable = gaia_cmd(t)
        np.testing.assert_array_equal(usable, [True, False, False])
        # M_G = 12 + 5 log10(10 mas) - 10 - A_G = 7 - 0.2
        np.testing.assert_allclose(x[0], [0.9, 6.8])
        assert np.isnan(x[1:]).all()
        raw, _ = gaia_cmd(t, deredden=False, min_parallax_over_error=1.0)
        np.testing.assert_allclose(raw[:2], [[1.0, 7.0], [1.5, 5.0]])

    def test_parallax_in_arcsec_is_converted(self):
        t = QTable(
            {
                "phot_g_mean_mag": [12.0],
                "bp_rp": [1.0],
                "parallax": [0.01] * u.arcsec,
                "parallax_over_error": [50.0],
            }
        )
        np.testing.assert_allclose(gaia_cmd(t)[0], [[1.0, 7.0]])

    def test_missing_columns_named(self):
        t = QTable({"phot_g_mean_mag": [1.0], "bp_rp": [1.0]})
        with pytest.raises(
            ValueError, match=r"lacks columns \['parallax', 'parallax_over_error'\]"
        ):
            gaia_cmd(t)

    def test_deredden_demanded_without_estimates(self, stars):
        t = stars.copy()
        del t["ag_gspphot"]
        with pytest.raises(ValueError, match=r"deredden=True needs columns \['ag_gspphot'"):
            gaia_cmd(t, deredden=True)


class TestMainSequence:
    def test_recovers_membership_and_ordering(self, stars):
        cat = main_sequence_catalog(stars, random_state=0)
        use = np.asarray(cat["ms_usable"])
        stage = np.asarray(cat["stage"])
        truth = np.array([STAGE_PLACE[s] for s in stage])
        flag = np.asarray(cat["ms_membership"])
        assert np.mean(flag[use] == truth[use]) > 0.93
        assert set(flag[~use]) == {"unmeasured"}
        ms = use & (stage == "main_sequence")
        rho = spearmanr(np.asarray(cat["ms_coordinate"])[ms], np.asarray(cat["teff"])[ms])
        assert rho.statistic < -0.95  # 0 at the blue (hot) end
        assert np.all(flag[use & (stage == "white_dwarf")] == "below")
        assert np.mean(flag[use & (stage == "red_giant")] == "above") > 0.99

    def test_without_dereddening_reddened_dwarfs_rise_above(self, stars):
        plain = main_sequence_catalog(stars, deredden=False, random_state=0)
        fixed = main_sequence_catalog(stars, random_state=0)
        ms = np.asarray(plain["stage"]) == "main_sequence"
        use = np.asarray(plain["ms_usable"]) & ms
        wrong_plain = np.mean(np.asarray(plain["ms_membership"])[use] != "main_sequence")
        wrong_fixed = np.mean(np.asarray(fixed["ms_membership"])[use] != "main_sequence")
        assert wrong_fixed < wrong_plain

    def test_line_with_outliers(self):
        rng = np.random.default_rng(0)
        colour = rng.uniform(0.0, 3.0, 600)
        mag = 4.0 * colour + 2.0 + rng.normal(0.0, 0.05, 600)
        mag[:30] -= 1.5  # above
        mag[30:50] += 4.0  # below
        x = np.column_stack([colour, mag])
        ms = MainSequence().fit(x)
        codes = ms.predict(x)
        np.testing.assert_array_equal(codes[:30], 1)
        np.testing.assert_array_equal(codes[30:50], -1)
        np.testing.assert_array_equal(codes[50:], 0)
        assert MEMBERSHIPS[1] == "above"
        np.testing.assert_allclose(ms.offset(x)[50:], mag[50:] - 4.0 * colour[50:] - 2.0, atol=0.1)
        coord = ms.coordinate(x)
        assert spearmanr(coord[50:], colour[50:]).statistic > 0.99
        assert coord.min() >= -0.01
        assert coord.max() <= 1.01

    def test_umap_reducer_keeps_the_ridge_and_orients_its_line(self):
        rng = np.random.default_rng(1)
        colour = rng.uniform(0.0, 3.0, 800)
        mag = 4.0 * colour + 0.5 * np.sin(2.0 * colour) + rng.normal(0.0, 0.05, 800)
        mag[:40] -= 2.0
        x = np.column_stack([colour, mag])
        ms = MainSequence("umap", random_state=0).fit(x)
        np.testing.assert_array_equal(ms.predict(x), np.r_[np.ones(40), np.zeros(760)])
        coord = ms.coordinate(x[40:])
        # UMAP's line may fold in places (see the class notes), but it runs blue to red.
        assert spearmanr(coord, colour[40:]).statistic > 0.5
        assert coord.min() >= -0.01
        assert coord.max() <= 1.01

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"reducer": "tsne"}, r"reducer must be one of \['pca', 'umap'\]"),
            ({"n_knots": 2}, "n_knots must be an integer >= 3"),
            ({"above": -1.0}, "above must be a finite number"),
        ],
    )
    def test_bad_settings(self, kwargs, match):
        x = np.random.default_rng(0).normal(size=(100, 2))
        with pytest.raises(ValueError, match=match):
            MainSequence(**kwargs).fit(x)

    def test_needs_a_colour_and_a_magnitude(self):
        with pytest.raises(
            ValueError, match=r"1 feature.*minimum of 2 is required by MainSequence"
        ):
            MainSequence().fit(np.zeros((100, 1)))
