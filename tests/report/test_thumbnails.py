import numpy as np
import pytest

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


def test_the_three_reddest_bands_and_fewer_bands():
    images = scene()
    five = np.concatenate([images[:, :1] * 0, images[:, :1] * 0, images], axis=1)
    np.testing.assert_array_equal(
        composite_thumbnails(five, bands="ugriz", pixel_scale=0.2, scale_bar=False),
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
    assert (rgb[2, -8:, :] == 0).all()  # masked rows (the bottom of the picture) are black


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
