import numpy as np
import pytest
from matplotlib.figure import Figure

from astrounsup.plotting import color_magnitude_figure, composite_rgb, kind_montage, save_figure


class TestCompositeRGB:
    def test_gri_mapping_and_nan(self):
        img = np.zeros((3, 8, 8))
        img[2, 2, 2] = 5.0  # i band only -> red
        img[0, 5, 5] = np.nan
        rgb = composite_rgb(img, ("g", "r", "i"))
        assert rgb.shape == (8, 8, 3)
        assert rgb.dtype == np.uint8
        assert rgb[2, 2, 0] > 0
        assert rgb[2, 2, 1] == 0
        assert rgb[2, 2, 2] == 0
        assert (rgb[5, 5] == 0).all()

    def test_single_band_is_grey(self):
        img = np.zeros((1, 8, 8))
        img[0, 3, 3] = 1.0
        rgb = composite_rgb(img, ("r",))
        assert rgb[3, 3, 0] == rgb[3, 3, 1] == rgb[3, 3, 2] > 0


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
