import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from astrounsup.simulate.artefacts import (
    bad_column,
    bleed_columns,
    cosmic_ray_track,
    ghost_annulus,
    nan_blob,
    satellite_trail,
)


class TestSatelliteTrail:
    def test_crosses_cutout_with_gaussian_profile(self):
        img = satellite_trail(
            (41, 41), pixel_scale=0.25, angle=0.0, offset=1.0, fwhm=1.0, peak=[2.0, 4.0]
        )
        assert img.shape == (2, 41, 41)
        # Horizontal trail 1 arcsec (4 px) above the centre, on every column.
        np.testing.assert_allclose(img[0, 24, :], 2.0)
        np.testing.assert_allclose(img[1] / img[0], 2.0)
        sigma_px = 1.0 / 2.3548 / 0.25
        np.testing.assert_allclose(img[0, 26, 0], 2.0 * np.exp(-0.5 * (2 / sigma_px) ** 2))


class TestGhost:
    def test_annulus(self):
        img = ghost_annulus(
            (81, 81),
            pixel_scale=0.25,
            x0=0.0,
            y0=0.0,
            r_in=4.0,
            r_out=6.0,
            softness=0.05,
            level=[1.0],
        )
        assert img[0, 40, 40] < 1e-6
        assert img[0, 40, 40 + 20] == pytest.approx(1.0, abs=1e-3)  # r = 5 arcsec
        assert img[0, 40, 40 + 32] < 1e-6  # r = 8 arcsec


class TestCosmicRay:
    def test_track_is_sharp_and_bounded(self):
        hit = cosmic_ray_track((20, 20), row=5.0, col=5.0, angle=0.0, length=4.0, deposit=900.0)
        np.testing.assert_array_equal(np.nonzero(hit[5])[0], [5, 6, 7, 8, 9])
        assert hit.sum() == pytest.approx(5 * 900.0)

    def test_track_leaving_cutout_is_clipped(self):
        hit = cosmic_ray_track((10, 10), row=9.0, col=9.0, angle=0.0, length=5.0, deposit=1.0)
        assert hit.sum() == 1.0


class TestBleed:
    def test_conserves_charge_and_caps_full_well(self):
        e = np.full((30, 7), 50.0)
        e[15, 3] = 5000.0
        e[14, 3] = 900.0
        out = bleed_columns(e, 400.0)
        assert out.max() == pytest.approx(400.0)
        assert out.sum() == pytest.approx(e.sum())
        np.testing.assert_array_equal(out[:, [0, 1, 2, 4, 5, 6]], e[:, [0, 1, 2, 4, 5, 6]])
        # The saturated run grows symmetrically along the column.
        saturated = np.nonzero(out[:, 3] >= 400.0)[0]
        assert saturated.min() < 14
        assert saturated.max() > 15

    def test_charge_past_edge_is_lost(self):
        e = np.zeros((5, 1))
        e[2, 0] = 1e4
        out = bleed_columns(e, 100.0)
        np.testing.assert_array_equal(out[:, 0], 100.0)


class TestMasks:
    def test_blob_and_column(self):
        blob = nan_blob((20, 20), row=10.0, col=10.0, radius=2.0)
        assert blob.sum() == 13
        col = bad_column((20, 20), col=3, row_start=5, row_stop=20)
        assert col.sum() == 15
        assert col[:, 3].sum() == 15


class TestAnomaliesInSurvey:
    def test_each_anomaly_kind_is_rendered(self):
        from astrounsup.simulate import ANOMALY_KINDS, simulate_lens_survey

        s = simulate_lens_survey(
            50, seed=4, lens_fraction=0.0, anomaly_fraction=1.0, nan_fraction=0.0
        )
        kinds = np.asarray(s.table["kind"])
        assert set(kinds) == set(ANOMALY_KINDS)
        sig = s.table["noise_sigma"].value
        # Cosmic rays: a pixel far above the noise in exactly one band.
        for i in np.nonzero(kinds == "cosmic_ray")[0]:
            peaks = (s.images[i] / sig[i][:, None, None]).reshape(3, -1).max(axis=1)
            assert (peaks > 20).sum() >= 1
        # Bleed trails: a saturated column segment longer than any PSF core.
        for i in np.nonzero(kinds == "bleed_trail")[0]:
            img = s.images[i, 1]
            top = img >= 0.999 * img.max()
            assert top.sum(axis=0).max() >= 3


@settings(max_examples=50, deadline=None, derandomize=True)
@given(
    core=hnp.arrays(np.float64, (20, 3), elements=st.floats(0.0, 5e3)),
    full_well=st.floats(1e3, 4e3),
)
def test_bleeding_conserves_charge_and_caps_full_well(core, full_well):
    """Spills cannot reach the edges here, so every electron must be kept."""
    charge = np.zeros((400, 3))
    charge[190:210] = core
    out = bleed_columns(charge, full_well)
    assert out.max() <= full_well * (1 + 1e-12)
    assert out.sum() == pytest.approx(charge.sum(), rel=1e-12, abs=1e-9)
    np.testing.assert_allclose(out.sum(axis=0), charge.sum(axis=0), rtol=1e-12, atol=1e-9)
    unsaturated = ~(charge > full_well).any(axis=0)
    np.testing.assert_array_equal(out[:, unsaturated], charge[:, unsaturated])
