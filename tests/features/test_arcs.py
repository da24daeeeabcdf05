from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from astrounsup.features import ArcFeatures, arc_score, lens_light_residuals
from astrounsup.features.arcs import _gaussian_blur, _runs

SIZE = 49  # odd: the centre is a pixel, so rotations by 90 degrees map the grid onto itself
SCALE = 0.2
BANDS = ["g", "r", "i"]
RED_COLOUR = np.array([0.25, 0.6, 1.0])  # flux per band of a red galaxy (i = 1)
BLUE_COLOUR = np.array([1.0, 0.8, 0.5])


def _grid():
    yy, xx = np.mgrid[:SIZE, :SIZE] - (SIZE - 1) / 2
    return yy, xx


def red_galaxy(r_e=0.6):
    yy, xx = _grid()
    r = np.hypot(yy, xx) * SCALE
    return 2.0 * np.exp(-((r / r_e) ** 1.0))


def blue_ring(radius=1.4, width=0.15, angles=(0.0, 2 * np.pi)):
    yy, xx = _grid()
    r, phi = np.hypot(yy, xx) * SCALE, np.mod(np.arctan2(yy, xx), 2 * np.pi)
    inside = (phi >= angles[0]) & (phi <= angles[1])
    return 0.2 * np.exp(-0.5 * ((r - radius) / width) ** 2) * inside


def blob(y, x, sigma=0.3):
    yy, xx = _grid()
    return 0.4 * np.exp(-0.5 * (((yy - y) ** 2 + (xx - x) ** 2) * SCALE**2) / sigma**2)


def scene(*, lens=None, companion=None, noise=0.002, seed=0):
    """(bands, ny, nx): a red galaxy with blue light (``lens``, ``companion``) and noise."""
    img = RED_COLOUR[:, None, None] * red_galaxy()[None]
    for part in (lens, companion):
        if part is not None:
            img = img + BLUE_COLOUR[:, None, None] * part[None]
    rng = np.random.default_rng(seed)
    return (img + rng.normal(0, noise, img.shape)).astype(np.float32)


class TestLensLightResiduals:
    def test_a_galaxy_of_one_colour_leaves_nothing_and_its_colours_are_the_ratios(self):
        images = scene(noise=0.0)[None]
        res, ratios, centres, names = lens_light_residuals(images, bands=BANDS,
                                                           pixel_scale=SCALE)  # fmt: skip
        assert names == ["g", "r"]
        np.testing.assert_allclose(ratios[0], RED_COLOUR[:2], rtol=1e-5)
        np.testing.assert_allclose(centres[0], [(SIZE - 1) / 2] * 2)
        assert np.abs(res).max() < 1e-5

    def test_blue_light_outside_the_core_stays_in_the_residual(self):
        ring = blue_ring()
        res, *_ = lens_light_residuals(scene(lens=ring, noise=0.0)[None], bands=BANDS,
                                       pixel_scale=SCALE)  # fmt: skip
        on_ring = ring > 0.5 * ring.max()
        # What stays of the ring in g: its g flux less the i share scaled by the core ratio.
        expected = (BLUE_COLOUR[0] - RED_COLOUR[0] * BLUE_COLOUR[2]) * ring[on_ring]
        np.testing.assert_allclose(res[0, 0][on_ring], expected, rtol=0.05)

    def test_psf_matching_removes_the_colour_gradient_a_sharper_band_makes(self):
        galaxy = red_galaxy(0.3)
        fwhm = np.array([0.7, 0.9, 1.2])  # g sharpest
        bands = np.stack([RED_COLOUR[b] * gaussian_filter(galaxy, fwhm[b] / 2.3548 / SCALE)
                          for b in range(3)])[None]  # fmt: skip
        plain, *_ = lens_light_residuals(bands, bands=BANDS, pixel_scale=SCALE)
        matched, *_ = lens_light_residuals(bands, bands=BANDS, pixel_scale=SCALE, psf_fwhm=fwhm)
        assert np.abs(matched[0, 0]).max() < 0.1 * np.abs(plain[0, 0]).max()

    def test_the_centre_is_the_red_peak_near_the_middle(self):
        images = scene(noise=0.0)
        shifted = np.roll(images, (3, -2), axis=(1, 2))[None]
        *_, centres, _ = lens_light_residuals(shifted, bands=BANDS, pixel_scale=SCALE)
        np.testing.assert_allclose(centres[0], [(SIZE - 1) / 2 + 3, (SIZE - 1) / 2 - 2])

    @pytest.mark.parametrize(
        ("kw", "match"),
        [
            ({"bands": ["g", "r"]}, "bands names 2 bands but images have 3"),
            ({"red": "z"}, "red must be one of the bands"),
            ({"bands": ["u1", "u2", "u3"]}, "name the band whose light to subtract with red"),
            ({"pixel_scale": 0.2 / 3600}, r"pixel_scale must be in \[0.01, 5\] arcsec/px"),
            ({"psf_fwhm": [1.0, -1.0, 1.0]}, "psf_fwhm must be > 0 arcsec"),
            ({"psf_fwhm": [1.0, 1.0]}, r"psf_fwhm must be \(n, bands\)"),
        ],
    )
    def test_bad_inputs_are_named(self, kw, match):
        args = {"bands": BANDS, "pixel_scale": SCALE} | kw
        with pytest.raises(ValueError, match=match):
            lens_light_residuals(scene()[None], **args)

    def test_channels_last_images_are_recognised(self):
        with pytest.raises(ValueError, match="channels-last"):
            lens_light_residuals(np.moveaxis(scene()[None], 1, -1), bands=BANDS,
                                 pixel_scale=SCALE)  # fmt: skip

    def test_the_reddest_band_is_found_by_wavelength_in_any_case(self):
        from astrounsup.features.arcs import _red_band

        assert _red_band(["g", "r", "i", "z", "y"], None) == 4  # HSC's y is Y
        assert _red_band(["i", "g", "r"], None) == 0
        assert _red_band(["i", "g", "r"], "r") == 2

    def test_one_band_has_no_colour(self):
        with pytest.raises(ValueError, match="at least 2 bands"):
            lens_light_residuals(scene()[None, :1], bands=["i"], pixel_scale=SCALE)


class TestArcFeatures:
    def est(self, **kw):
        return ArcFeatures(bands=BANDS, pixel_scale=SCALE, **kw).fit()

    def test_rotations_and_reflections_leave_the_features_unchanged(self):
        image = scene(lens=blue_ring(angles=(0.3, 2.2)), companion=blob(10, -14))
        views = [np.rot90(image, k, axes=(1, 2)) for k in range(4)]
        views += [v[:, ::-1, :] for v in views]
        X = self.est().transform(np.stack(views))
        np.testing.assert_allclose(X, np.broadcast_to(X[0], X.shape), rtol=1e-3, atol=1e-3)

    def test_one_row_per_cutout_with_its_names(self):
        est = self.est(radii=(0.5, 1.5, 0.5), n_modes=2)
        X = est.transform(np.stack([scene(seed=k) for k in range(3)]))
        assert X.shape == (3, 3 * 7 + 4 + 2) == (3, len(est.feature_names_))
        assert est.feature_names_[-2:] == ["core_ratio_g", "core_ratio_r"]
        np.testing.assert_allclose(est.radii_, [0.5, 1.0, 1.5])

    def test_batches_give_the_same_features_as_one_pass(self):
        images = np.stack([scene(lens=blue_ring(), seed=k) for k in range(5)])
        np.testing.assert_allclose(self.est(batch_size=2).transform(images),
                                   self.est().transform(images), rtol=1e-5, atol=1e-6)  # fmt: skip

    def test_nan_pixels_give_finite_features(self):
        image = scene(lens=blue_ring())
        image[:, :10, :10] = np.nan
        assert np.isfinite(self.est().transform(image[None])).all()

    def test_an_empty_input_gives_no_rows(self):
        assert self.est().transform(np.zeros((0, 3, SIZE, SIZE))).shape == (0, 11 * 9 + 4 + 2)

    def test_the_arc_score_orders_ring_above_companion_above_nothing(self):
        est = self.est()
        images = np.stack([
            scene(lens=blue_ring()),
            scene(companion=blob(0, 7)),  # a blue blob at 1.4", like the ring's radius
            scene(),
        ])  # fmt: skip
        score = arc_score(est.transform(images), est.feature_names_)
        assert score[0] > score[1] > score[2]

    def test_an_arc_is_tangentially_longer_than_a_companion(self):
        est = self.est()
        X = est.transform(np.stack([scene(lens=blue_ring(angles=(0.0, 2.0))),
                                    scene(companion=blob(0, 7))]))  # fmt: skip
        elong = X[:, est.feature_names_.index("peak_elongation")]
        assert elong[0] > elong[1] + 0.5

    @pytest.mark.parametrize(
        ("kw", "match"),
        [
            ({"n_angles": 8}, "n_angles must be an integer >= 16"),
            ({"n_modes": 40}, r"n_modes must be <= n_angles // 2 = 32"),
            ({"radii": (2.0, 1.0, 0.5)}, "0 < inner <= outer"),
            ({"radii": "wide"}, r"radii must be \(inner, outer, step\)"),
            ({"batch_size": 0}, "batch_size must be an integer >= 1"),
        ],
    )
    def test_bad_settings_are_named(self, kw, match):
        with pytest.raises(ValueError, match=match):
            ArcFeatures(bands=BANDS, pixel_scale=SCALE, **kw).fit()

    def test_it_is_a_scikit_learn_estimator(self):
        from sklearn.base import clone

        est = ArcFeatures(bands=BANDS, pixel_scale=SCALE, n_modes=2)
        copy = clone(est)
        assert copy.get_params() == est.get_params()
        assert copy.get_params()["n_modes"] == 2
        assert not hasattr(copy, "feature_names_")

    def test_transform_before_fit_is_refused(self):
        with pytest.raises(ValueError, match="not fitted yet"):
            ArcFeatures(bands=BANDS, pixel_scale=SCALE).transform(scene()[None])


class TestArcScore:
    def test_it_needs_the_features_names(self):
        with pytest.raises(ValueError, match="no ring"):
            arc_score(np.zeros((2, 2)), ["a", "b"])
        with pytest.raises(ValueError, match=r"features must be \(n, 3\)"):
            arc_score(np.zeros((2, 2)), ["a", "b", "c"])


class TestHelpers:
    def test_the_blur_matches_scipy_away_from_the_edges(self):
        rng = np.random.default_rng(0)
        x = rng.normal(size=(2, 1, 40, 40)).astype(np.float32)
        import torch

        out = _gaussian_blur(torch.from_numpy(x), torch.tensor([[1.5], [2.5]])).numpy()
        for k, s in enumerate((1.5, 2.5)):
            ref = gaussian_filter(x[k, 0].astype(np.float64), s, mode="constant", truncate=8)
            np.testing.assert_allclose(out[k, 0], ref, atol=2e-3)

    def test_runs_along_a_circle_match_a_loop(self):
        import torch

        rng = np.random.default_rng(1)
        above = rng.random((50, 3, 16)) < 0.6
        above[0, 0] = True  # a full circle
        best, count = _runs(torch.from_numpy(above))

        def loop(row):
            if row.all():
                return len(row), 1
            k = int(np.argmin(row))  # start the walk at a False: no run wraps past it
            seq = np.roll(row, -k)
            runs, cur = [], 0
            for v in seq:
                cur = cur + 1 if v else 0
                runs.append(cur)
            starts = int(np.sum(seq & ~np.roll(seq, 1)))
            return max(runs), starts

        ref = np.array([[loop(r) for r in obj] for obj in above])
        np.testing.assert_array_equal(best.numpy(), ref[..., 0])
        np.testing.assert_array_equal(count.numpy(), ref[..., 1])


REALDATA = Path(__file__).resolve().parents[2].parent / "shared" / "realdata" / "hsc_scarlet"


@pytest.mark.skipif(not REALDATA.is_dir(), reason=f"real HSC pixels not found at {REALDATA}")
def test_real_hsc_stamps_give_finite_rotation_invariant_features():
    """Real noise, PSFs and blends (HSC COSMOS, g r i z y at 0.168"/px)."""
    with np.load(REALDATA / "data" / "hsc_cosmos_35.npz") as scene:
        img = scene["images"].astype(np.float32)
        bands = [str(b) for b in scene["filters"]]
    stamps = np.stack([img[:, y : y + 41, x : x + 41] for y in (0, 8, 17) for x in (0, 7)])
    est = ArcFeatures(bands=bands, pixel_scale=0.168).fit()
    X = est.transform(stamps)
    assert np.isfinite(X).all()
    turned = est.transform(np.rot90(stamps, 1, axes=(2, 3)).copy())
    np.testing.assert_allclose(turned, X, rtol=1e-3, atol=1e-3)
