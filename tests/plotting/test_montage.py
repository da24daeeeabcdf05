import numpy as np
import pytest
from matplotlib.figure import Figure

from astrounsup.plotting import (
    NO_DATA_RGB,
    color_magnitude_figure,
    composite_rgb,
    composite_thumbnails,
    gallery,
    kind_montage,
    save_figure,
)


class TestCompositeRGB:
    def test_gri_mapping_orientation_and_no_data(self):
        img = np.random.default_rng(0).normal(0.0, 1.0, (3, 16, 16))
        img[2, 2, 2] = 50.0  # i band only -> red
        img[:, 12, 5] = np.nan
        rgb = composite_rgb(img, ("g", "r", "i"))
        assert rgb.shape == (16, 16, 3)
        assert rgb.dtype == np.uint8
        # A picture: the stored first row (FITS, bottom) is its last.
        r, g, b = rgb[16 - 1 - 2, 2].astype(int)
        assert r > 100
        assert r > 3 * max(g, b)
        assert tuple(rgb[16 - 1 - 12, 5]) == NO_DATA_RGB  # no data: grey, not sky

    def test_single_band_is_grey(self):
        img = np.random.default_rng(1).normal(0.0, 1.0, (1, 8, 8))
        img[0, 3, 3] = 30.0
        rgb = composite_rgb(img, ("r",))
        assert rgb[4, 3, 0] == rgb[4, 3, 1] == rgb[4, 3, 2] > 0

    def test_the_same_picture_as_the_report(self):
        images = np.random.default_rng(2).normal(0.0, 1.0, (2, 3, 16, 16))
        report = composite_thumbnails(images, bands="gri", pixel_scale=0.2, zoom=1,
                                      scale_bar=False)  # fmt: skip
        np.testing.assert_array_equal(composite_rgb(images[1], "gri"), report[1])
        barred = composite_rgb(images[1], "gri", pixel_scale=0.2)
        assert (barred != report[1]).any()  # a scale bar when the pixel scale is known
        for unknown in (None, float("nan"), np.float32("nan")):  # no bar, no error
            np.testing.assert_array_equal(composite_rgb(images[1], "gri", pixel_scale=unknown),
                                          report[1])  # fmt: skip

    def test_gallery_draws_the_pictures_with_their_scale_bar(self):
        images = np.random.default_rng(3).normal(0.0, 1.0, (2, 3, 16, 16))
        fig = gallery(images, "gri", pixel_scale=0.2)
        shown = fig.axes[0].get_images()[0].get_array()
        np.testing.assert_array_equal(shown, composite_rgb(images[0], "gri", pixel_scale=0.2))


class TestKindMontage:
    def test_one_row_per_kind(self, small_survey, tmp_path):
        s = small_survey
        fig = kind_montage(s.images, s.table["kind"], s.bands, per_kind=3)
        assert isinstance(fig, Figure)
        n_kinds = len(set(np.asarray(s.table["kind"])))
        assert len(fig.axes) == 3 * n_kinds
        path = save_figure(fig, tmp_path / "m.png")
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    def test_length_mismatch(self, small_survey):
        with pytest.raises(ValueError, match="kinds has 2 entries but there are 60 images"):
            kind_montage(small_survey.images, ["a", "b"], small_survey.bands)


class TestColourMagnitude:
    def test_figure(self):
        from astrounsup.simulate.stars import simulate_stars

        fig = color_magnitude_figure(simulate_stars(300, seed=1))
        assert "stars with parallax S/N" in fig.axes[0].get_title()
