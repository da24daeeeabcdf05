import numpy as np
import pytest
import torch
from scipy.special import gammainc

from astrounsup.instrument import mag_to_flux
from astrounsup.simulate import (
    PixelGrid,
    render_sersic,
    sersic_b,
    sersic_enclosed_fraction,
)


class TestSersicB:
    @pytest.mark.parametrize("n", [0.3, 0.5, 1.0, 2.0, 4.0, 8.0])
    def test_half_light_definition(self, n):
        assert gammainc(2 * n, sersic_b(n)) == pytest.approx(0.5, abs=1e-12)

    def test_known_values(self):
        # Ciotti & Bertin (1999): b_n ~ 2n - 1/3 + 4/(405 n) for large n.
        assert float(sersic_b(1.0)) == pytest.approx(1.678347, abs=1e-6)
        assert float(sersic_b(10.0)) == pytest.approx(20 - 1 / 3 + 4 / 4050, abs=1e-4)

    def test_rejects_non_positive(self):
        with pytest.raises(ValueError, match="Sérsic index n must be > 0"):
            sersic_b([1.0, 0.0])


def _elliptical_aperture_sum(image, grid, *, x0, y0, q, phi, radius):
    coords = (np.arange(grid.size) - (grid.size - 1) / 2) * grid.pixel_scale
    xx, yy = np.meshgrid(coords, coords)
    c, s = np.cos(phi), np.sin(phi)
    xp = c * (xx - x0) + s * (yy - y0)
    yp = (-s * (xx - x0) + c * (yy - y0)) / q
    return float(image[np.hypot(xp, yp) <= radius].sum())


class TestRenderSersic:
    @pytest.mark.parametrize(
        ("n", "r_e", "q", "phi"),
        [
            (0.5, 0.4, 0.8, 0.2),
            (1.0, 0.8, 0.5, 1.1),
            (2.5, 0.6, 0.9, 2.0),
            (4.0, 0.5, 0.7, 0.4),
            (4.0, 1.5, 1.0, 0.0),
        ],
    )
    def test_flux_matches_magnitude(self, n, r_e, q, phi):
        """Pixel sum inside an elliptical aperture = magnitude flux x analytic fraction."""
        grid = PixelGrid(121, pixel_scale=0.263, oversample=2)
        flux = float(mag_to_flux(20.3))
        img = (
            render_sersic(
                grid, x0=[0.07], y0=[-0.11], r_e=[r_e], n=[n], q=[q], phi=[phi], flux=[flux]
            )[0]
            .double()
            .numpy()
        )
        radius = 5.0 * r_e
        expected = flux * float(sersic_enclosed_fraction(radius, n=n, r_e=r_e))
        got = _elliptical_aperture_sum(img, grid, x0=0.07, y0=-0.11, q=q, phi=phi, radius=radius)
        assert got == pytest.approx(expected, rel=0.02)

    def test_total_flux_of_compact_profile(self):
        grid = PixelGrid(64, pixel_scale=0.263, oversample=2)
        img = render_sersic(
            grid, x0=[0.0], y0=[0.0], r_e=[0.5], n=[1.0], q=[0.6], phi=[0.5], flux=[3.0]
        )
        assert float(img.sum()) == pytest.approx(3.0, rel=0.02)

    def test_matches_direct_evaluation_away_from_centre(self):
        grid = PixelGrid(32, pixel_scale=0.2, oversample=1)
        img = (
            render_sersic(
                grid,
                x0=[0.0],
                y0=[0.0],
                r_e=[1.0],
                n=[1.0],
                q=[1.0],
                phi=[0.0],
                flux=[1.0],
                cusp_refine=False,
            )[0]
            .double()
            .numpy()
        )
        b = float(sersic_b(1.0))
        total = 2 * np.pi * 1.0 * np.exp(b) * b**-2 * 1.0  # Gamma(2) = 1
        x = grid.x.double().numpy()
        expected = np.exp(-b * (np.hypot(x[None, :], x[:, None]) - 1.0)) / total * 0.04
        np.testing.assert_allclose(img, expected, rtol=1e-5)

    def test_rotation_by_pi_over_2_transposes(self):
        grid = PixelGrid(40, pixel_scale=0.2, oversample=2)
        a = render_sersic(grid, x0=[0.0], y0=[0.0], r_e=[0.8], n=[1.5], q=[0.4], phi=[0.0])[0]
        b = render_sersic(grid, x0=[0.0], y0=[0.0], r_e=[0.8], n=[1.5], q=[0.4], phi=[np.pi / 2])[
            0
        ]
        torch.testing.assert_close(a.T, b, rtol=1e-4, atol=1e-7)

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"q": [0.0]}, "axis ratio q must be in"),
            ({"q": [1.2]}, "axis ratio q must be in"),
            ({"r_e": [-1.0]}, "half-light radius r_e must be > 0"),
        ],
    )
    def test_bad_parameters(self, kwargs, match):
        params = {"x0": [0.0], "y0": [0.0], "r_e": [1.0], "n": [1.0], "q": [0.5], "phi": [0.0]}
        params.update(kwargs)
        with pytest.raises(ValueError, match=match):
            render_sersic(PixelGrid(8, pixel_scale=0.2), **params)


class TestPixelGrid:
    def test_centred_coordinates(self):
        grid = PixelGrid(5, pixel_scale=0.3, oversample=3)
        np.testing.assert_allclose(grid.x.numpy().mean(), 0.0, atol=1e-7)
        assert grid.x.numel() == 15

    @pytest.mark.parametrize(
        ("args", "match"),
        [((0,), "size must be a positive integer"), ((4.5,), "size must be a positive integer")],
    )
    def test_bad_size(self, args, match):
        with pytest.raises(ValueError, match=match):
            PixelGrid(*args, pixel_scale=0.2)

    def test_bad_scale_and_oversample(self):
        with pytest.raises(ValueError, match="pixel_scale must be > 0"):
            PixelGrid(4, pixel_scale=0.0)
        with pytest.raises(ValueError, match="oversample must be a positive integer"):
            PixelGrid(4, pixel_scale=0.2, oversample=0)
