from pathlib import Path

import numpy as np
import pytest

from astrounsup.features import (
    DETECTORS,
    detector_scores,
    ghost_scores,
    ring_scores,
    sharp_scores,
    trail_scores,
)
from astrounsup.features.artefacts import _line_segments
from astrounsup.noise import estimate_sky

SIZE = 64
SCALE = 0.25  # arcsec/px: binned by 2 for the line search, blocks of 8 px for ghosts
BANDS = ["g", "r", "i"]
PSF_SIGMA = 1.6  # px
PSF_FWHM = PSF_SIGMA * 2.3548 * SCALE  # arcsec


def _grid(size=SIZE):
    return np.mgrid[:size, :size] - (size - 1) / 2


def galaxy(r_e=6.0, peak=60.0):
    yy, xx = _grid()
    return peak * np.exp(-np.hypot(yy, xx) / r_e)


def star(y=0.0, x=0.0, flux=3000.0):
    yy, xx = _grid()
    g = np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * PSF_SIGMA**2))
    return flux * g / g.sum()


def noise_images(n, seed=0, size=SIZE):
    return np.random.default_rng(seed).normal(0.0, 1.0, (n, len(BANDS), size, size))


def line(angle_deg, offset=5.0, width=1.5, level=4.0):
    yy, xx = _grid()
    a = np.deg2rad(angle_deg)
    d = -np.sin(a) * xx + np.cos(a) * yy - offset  # distance from the line
    return level * np.exp(-0.5 * (d / width) ** 2)


def annulus(y, x, r_in, r_out, level):
    yy, xx = _grid()
    r = np.hypot(yy - y, xx - x)
    return np.where((r > r_in) & (r < r_out), level, 0.0)


class TestTrail:
    def test_a_line_in_one_band_is_found_in_that_band(self):
        images = noise_images(3)
        images += galaxy()[None, None] * np.array([0.5, 0.8, 1.0])[None, :, None, None]
        images[1, 2] += line(30.0)
        images[2, 0] += line(115.0, offset=-12.0)
        s = trail_scores(images, bands=BANDS, pixel_scale=SCALE)
        assert s.shape == (3, 4)
        assert s[0].max() < 7  # a bright galaxy alone lights one or two pieces of a line
        assert s[1, 2] > 3 * s[0, 2]
        assert s[1, 2] > max(s[1, 0], s[1, 1]) + 5
        assert s[2, 0] > 3 * s[0, 0]

    def test_a_star_or_a_pair_is_not_a_line(self):
        images = noise_images(2, seed=1)
        images[0] += star(flux=5e4)[None]
        images[1] += (galaxy(r_e=3.0) + np.roll(galaxy(r_e=3.0), 20, axis=1))[None]
        line_img = noise_images(1, seed=2)
        line_img[0] += line(60.0, level=3.0)[None]
        s = trail_scores(images, bands=BANDS, pixel_scale=SCALE)[:, -1]
        found = trail_scores(line_img, bands=BANDS, pixel_scale=SCALE)[:, -1]
        assert s.max() < found[0] / 2

    def test_rotations_and_flips_keep_the_score(self):
        images = noise_images(2, seed=3)
        images[1] += line(20.0)[None]
        s = trail_scores(images, bands=BANDS, pixel_scale=SCALE)
        for moved in (np.rot90(images, 1, (2, 3)), images[..., ::-1]):
            np.testing.assert_allclose(
                trail_scores(np.ascontiguousarray(moved), bands=BANDS, pixel_scale=SCALE),
                s, rtol=0.15, atol=0.5,
            )  # fmt: skip

    def test_line_pieces_are_unit_norm_and_cover_whole_lines(self):
        m = _line_segments(8, 4, 2).to_dense().numpy()
        np.testing.assert_allclose((m**2).sum(1), 1.0, rtol=1e-6)
        # The first line (angle 0, offset -3.5 px) is the first column, in two pieces.
        first = m[:2].sum(0).reshape(8, 8) > 0
        assert first.sum() == 8
        assert first[:, 0].all()

    def test_masked_pixels_are_left_out(self):
        images = noise_images(1, seed=4)
        images[0, :, :, 20] = np.nan  # a bad column is not a bright line
        assert trail_scores(images, bands=BANDS, pixel_scale=SCALE).max() < 7


class TestSharp:
    def test_a_hit_is_sharper_than_a_bright_star(self):
        images = noise_images(2, seed=5)
        images[:, :] += star(flux=2e4)[None, None]
        images[1, 1, 10, 40] += 40.0
        s = sharp_scores(images, bands=BANDS, pixel_scale=SCALE, psf_fwhm=[PSF_FWHM] * 3)
        assert s.shape == (2, 3)
        assert s[0].max() < 7
        assert s[1, 1] > 25
        assert s[1, 0] < 7

    def test_the_psf_sets_what_is_too_sharp(self):
        images = noise_images(1, seed=6) + star(flux=2e4)[None, None]
        right = sharp_scores(images, bands=BANDS, pixel_scale=SCALE, psf_fwhm=[PSF_FWHM] * 3)
        # Told the PSF is four times broader, the star is sharper than it allows.
        wrong = sharp_scores(images, bands=BANDS, pixel_scale=SCALE,
                             psf_fwhm=[4 * PSF_FWHM] * 3)  # fmt: skip
        assert wrong.min() > 3 * right.max()

    def test_the_edge_of_a_masked_blob_is_not_a_hit(self):
        images = noise_images(1, seed=7) + galaxy()[None, None]
        images[0, :, 28:34, 28:34] = np.nan  # bad pixels in the bright core
        s = sharp_scores(images, bands=BANDS, pixel_scale=SCALE, psf_fwhm=[PSF_FWHM] * 3)
        assert s.max() < 7

    def test_reference_laplacian_excess(self):
        rng = np.random.default_rng(8)
        images = rng.normal(0.0, 1.0, (1, 1, 16, 16))
        s = sharp_scores(images, bands=["r"], pixel_scale=SCALE, psf_fwhm=[PSF_FWHM])
        # The same by loops, in units of the border noise around the border median.
        sky, noise = estimate_sky(images)
        x = (images[0, 0] - sky[0, 0]) / noise[0, 0]
        allowed = 1 - np.exp(-1 / (2 * PSF_SIGMA**2)) + 0.1
        best = -np.inf
        for i in range(16):
            for j in range(16):
                nb = [x[a, b] for a, b in ((i - 1, j), (i + 1, j), (i, j - 1), (i, j + 1))
                      if 0 <= a < 16 and 0 <= b < 16]  # fmt: skip
                lap = x[i, j] - np.mean(nb)
                best = max(best, (lap - allowed * x[i, j]) / np.sqrt(1.25))
        np.testing.assert_allclose(s[0, 0], best, rtol=1e-4)


class TestGhostAndRing:
    def test_a_faint_annulus_off_the_object_is_a_ghost(self):
        images = noise_images(3, seed=9)
        images += galaxy(r_e=5.0, peak=200.0)[None, None]  # a large bright galaxy
        images[1] += annulus(-14, 12, 8, 20, 1.0)[None]
        images[2] += np.roll(galaxy(r_e=3.0, peak=80.0), (18, -18), axis=(0, 1))[None]
        s = ghost_scores(images, bands=BANDS, pixel_scale=SCALE)
        assert s.shape == (3,)
        assert s[0] == 0.0
        assert s[2] <= 4.0
        assert s[1] >= 5 * 4.0  # at least five 2" blocks

    def test_a_ring_rises_after_a_dip(self):
        yy, xx = _grid()
        r = np.hypot(yy, xx)
        ring = 30.0 * np.exp(-r / 2.0) + 10.0 * np.exp(-0.5 * ((r - 12.0) / 1.5) ** 2)
        images = noise_images(3, seed=10)
        images[0] += galaxy()[None]
        images[1] += ring[None]
        images[2] += (galaxy() + np.roll(galaxy(r_e=2.0), 14, axis=1))[None]  # a neighbour
        s = ring_scores(images, bands=BANDS, pixel_scale=SCALE)
        assert s[1] > 10
        assert s[1] > 3 * max(s[0], s[2])

    def test_rotations_keep_the_ring_and_ghost_scores(self):
        images = noise_images(2, seed=11) + galaxy()[None, None]
        images[1] += annulus(-14, 12, 8, 20, 1.0)[None]
        turned = np.ascontiguousarray(np.rot90(images, 1, (2, 3)))
        for f in (ghost_scores, ring_scores):
            np.testing.assert_allclose(f(turned, bands=BANDS, pixel_scale=SCALE),
                                       f(images, bands=BANDS, pixel_scale=SCALE),
                                       rtol=0.2, atol=2.0)  # fmt: skip


class TestDetectorScores:
    def test_every_detector_and_band(self):
        images = noise_images(2, seed=12)
        out = detector_scores(images, bands=BANDS, pixel_scale=SCALE)
        assert set(out) == {*DETECTORS, *(f"{d}_{b}" for d in ("trail", "sharp") for b in BANDS)}
        # The best of the bands and of their sum (the last column of trail_scores).
        each = trail_scores(images, bands=BANDS, pixel_scale=SCALE)
        np.testing.assert_allclose(out["trail"], each.max(1), rtol=1e-6)
        np.testing.assert_allclose([out[f"trail_{b}"] for b in BANDS], each[:, :3].T, rtol=1e-6)
        only = detector_scores(images, bands=BANDS, pixel_scale=SCALE, detectors=["ring"])
        np.testing.assert_allclose(only["ring"], out["ring"])
        assert list(only) == ["ring"]

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"pixel_scale": 20.0}, r"pixel_scale must be in \[0.01, 5\] arcsec/px; got 20"),
            ({"detectors": ["blob"]}, r"unknown detectors \['blob'\]"),
            ({"bands": ["g", "r"]}, r"bands names 2 bands but images have 3"),
            ({"psf_fwhm": [1.0, 1.0]}, r"psf_fwhm must be \(n, bands\)"),
        ],
    )
    def test_bad_input(self, kwargs, match):
        options = {"bands": BANDS, "pixel_scale": SCALE} | kwargs
        with pytest.raises(ValueError, match=match):
            detector_scores(noise_images(1), **options)

    def test_channels_last_is_named(self):
        with pytest.raises(ValueError, match="looks channels-last"):
            trail_scores(np.zeros((1, 64, 64, 3)), bands=BANDS, pixel_scale=SCALE)

    def test_too_small_for_the_line_search(self):
        with pytest.raises(ValueError, match=r"cutouts of 12 px are too small for 8 segments"):
            trail_scores(noise_images(1, size=12), bands=BANDS, pixel_scale=SCALE)
        # 24 px at 0.25"/px are binned by 1, not 2, to keep two pixels per piece.
        assert trail_scores(noise_images(1, size=24), bands=BANDS, pixel_scale=SCALE).shape == (
            1,
            4,
        )


REALDATA = Path(__file__).resolve().parents[2].parent / "shared" / "realdata" / "hsc_scarlet"


@pytest.mark.skipif(not REALDATA.is_dir(), reason=f"real HSC pixels not found at {REALDATA}")
def test_real_hsc_stamps_give_finite_rotation_invariant_scores():
    """Real noise, PSFs and blends (HSC COSMOS, g r i z y at 0.168"/px, 41-px stamps of a
    crowded scene)."""
    with np.load(REALDATA / "data" / "hsc_cosmos_35.npz") as scene:
        img = scene["images"].astype(np.float32)
        bands = [str(b) for b in scene["filters"]]
    stamps = np.stack([img[:, y : y + 41, x : x + 41] for y in (0, 8, 17) for x in (0, 7)])
    out = detector_scores(stamps, bands=bands, pixel_scale=0.168)
    assert all(np.isfinite(v).all() for v in out.values())
    turned = detector_scores(np.ascontiguousarray(np.rot90(stamps, 1, (2, 3))), bands=bands,
                             pixel_scale=0.168)  # fmt: skip
    for name in ("sharp", "ring"):
        np.testing.assert_allclose(turned[name], out[name], rtol=0.2, atol=2.0)


def test_a_stamp_cut_at_the_survey_edge_scores_as_it_would_whole():
    # NaN bands of 4-28 px along each side (no data): left out, not read as sky, light
    # or a line; before, the cut's edge scored as a trail (20 sigma) and a ghost.
    images = noise_images(8, seed=21) + galaxy()[None, None]
    cut = images.copy()
    widths = [4, 8, 12, 16, 20, 24, 28, 28]
    for i, (side, w) in enumerate(zip([0, 1, 2, 3] * 2, widths, strict=True)):
        rows = slice(None) if side < 2 else (slice(None, w) if side == 2 else slice(-w, None))
        cols = slice(None) if side >= 2 else (slice(None, w) if side == 0 else slice(-w, None))
        cut[i, :, rows, cols] = np.nan
    whole = detector_scores(images, bands=BANDS, pixel_scale=SCALE)
    parted = detector_scores(cut, bands=BANDS, pixel_scale=SCALE)
    for name in DETECTORS:
        assert parted[name].max() <= whole[name].max() + 1.0, name
