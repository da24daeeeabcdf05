import numpy as np
import pytest

from astrounsup.plotting import NO_DATA_RGB, band_views
from astrounsup.report import composite_thumbnails, scale_bar_arcsec


def scene(seed=0, n=3, size=32):
    rng = np.random.default_rng(seed)
    images = rng.normal(0.0, 1.0, (n, 3, size, size))
    images[:, :, 14:18, 14:18] += np.array([5.0, 20.0, 80.0])[None, :, None, None]  # red
    return images


def test_the_stretch_is_in_noise_units_so_units_and_depth_do_not_matter():
    images = scene()
    ref = composite_thumbnails(images, bands="gri", pixel_scale=0.2, scale_bar=False)
    # The same cutouts in ADU (x 1000, another sky level): the same picture.
    adu = composite_thumbnails(1000.0 * images + 300.0, bands="gri", pixel_scale=0.2,
                               scale_bar=False)  # fmt: skip
    np.testing.assert_array_equal(ref, adu)
    # A red source: red above green above blue at its centre (first rows are the top).
    r, g, b = ref[0, 32, 32].astype(int)
    assert r > g > b


def test_one_noise_scale_for_every_band_so_a_red_source_stays_red():
    # The bands' noise differs (a deep g, a shallow i), the fluxes are those of a red
    # source: one scale for every band keeps it red; each band in its own noise units
    # made it look blue-green.
    images = scene()
    noise = np.array([0.25, 1.0, 8.0])[None, :, None, None]
    rng = np.random.default_rng(1)
    images = rng.normal(0.0, 1.0, images.shape) * noise
    images[:, :, 14:18, 14:18] += np.array([5.0, 20.0, 80.0])[None, :, None, None]
    r, g, b = composite_thumbnails(images, bands="gri", pixel_scale=0.2,
                                   scale_bar=False)[0, 32, 32].astype(int)  # fmt: skip
    assert r > g > b


def test_band_views_share_the_stretch_and_are_labelled():
    images = scene()
    views = band_views(images, bands="gri", pixel_scale=0.2, scale_bar=False)
    assert views.shape == (3, 3, 64, 64, 3)
    centre = views[0, :, 32, 32, 0].astype(int)
    assert centre[0] < centre[1] < centre[2]  # g < r < i for the red source
    bare = band_views(images, bands="gri", pixel_scale=0.2, scale_bar=False, zoom=2)
    assert (bare[0, 0, :12, :12] > 200).any()  # the band's name, white, top left


def test_i_r_g_when_present_and_fewer_bands():
    images = scene()
    # u and z (here a copy of g and 5 x i) are not shown when g, r and i are there.
    five = np.concatenate([images[:, :1], images, 5 * images[:, 2:]], axis=1)
    np.testing.assert_array_equal(
        composite_thumbnails(five, bands="ugriz", pixel_scale=0.2, scale_bar=False),
        composite_thumbnails(images, bands="gri", pixel_scale=0.2, scale_bar=False),
    )
    # Without all of g, r, i: the reddest, middle and bluest.
    np.testing.assert_array_equal(
        composite_thumbnails(images, bands="JHK", pixel_scale=0.2, scale_bar=False),
        composite_thumbnails(images, bands="gri", pixel_scale=0.2, scale_bar=False),
    )
    grey = composite_thumbnails(images[:, 2:], bands="i", pixel_scale=0.2, scale_bar=False)
    assert (grey[..., 0] == grey[..., 1]).all()
    assert (grey[..., 1] == grey[..., 2]).all()


def test_a_flat_border_and_masked_pixels_still_give_a_picture():
    images = scene()
    images[1] = 0.0  # a flat, JPEG-like cutout
    images[1, :, 10:20, 10:20] = 7.0
    images[2, :, :4, :] = np.nan
    rgb = composite_thumbnails(images, bands="gri", pixel_scale=0.2, scale_bar=False)
    assert rgb[1].max() > 0
    assert rgb[1, 0, 0].max() == 0
    # Masked rows (the bottom of the picture) are no data: grey, not sky.
    assert (rgb[2, -8:, :] == NO_DATA_RGB).all()


def test_the_scale_bar_is_a_round_length_drawn_white():
    assert scale_bar_arcsec(64 * 0.263) == 2.0
    assert scale_bar_arcsec(64 * 0.168) == 2.0
    assert scale_bar_arcsec(100 * 1.8) == 30.0
    bare = composite_thumbnails(scene(), bands="gri", pixel_scale=0.2, scale_bar=False)
    barred = composite_thumbnails(scene(), bands="gri", pixel_scale=0.2)
    changed = (bare != barred).any(-1)
    assert changed[:, -8:, :].any()
    assert not changed[:, :44, :].any()  # the bar and its label sit in the bottom fifth
    # 32 px at 0.2"/px shown at 64 px: a 1" bar is 10 shown pixels, white, 4 from the bottom.
    assert (barred[:, 60, 3:13] == 255).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"bands": "gr"}, r"images must be \(n, bands, ny, nx\) with one band name each"),
        ({"pixel_scale": 0.0}, "pixel_scale must be a positive number; got 0.0"),
        ({"stretch": -1.0}, "stretch must be a positive number"),
        ({"zoom": 1.5}, "zoom must be an integer >= 1; got 1.5"),
    ],
)
def test_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        composite_thumbnails(scene(), **({"bands": "gri", "pixel_scale": 0.2} | kwargs))
