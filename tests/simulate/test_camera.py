import numpy as np
import pytest
import torch

from astrounsup.instrument import BANDS
from astrounsup.simulate import PixelGrid, calibrate, expose, render_moffat


class TestRenderMoffat:
    def test_flux_and_centre(self):
        grid = PixelGrid(65, pixel_scale=0.263, oversample=2)
        img = render_moffat(
            grid,
            x0=torch.tensor([0.263]),
            y0=torch.tensor([0.0]),
            fwhm=torch.tensor([[1.0, 1.3]]),
            flux=torch.tensor([[2.0, 3.0]]),
        )
        assert img.shape == (1, 2, 65, 65)
        np.testing.assert_allclose(img.sum(dim=(-1, -2))[0].numpy(), [2.0, 3.0], rtol=0.01)
        assert np.unravel_index(int(img[0, 0].argmax()), (65, 65)) == (32, 33)


class TestNoise:
    @pytest.mark.parametrize("band", ["g", "r", "i", "z"])
    def test_blank_sky_variance(self, band):
        """Variance of blank sky-subtracted pixels = (sky + read^2) / calibration^2."""
        b = BANDS[band]
        n = 40
        sky = np.full((n, 1), b.sky_electrons(0.263))
        e = expose(
            np.zeros((n, 1, 64, 64)),
            sky_electrons=sky,
            electrons_per_nmgy=np.array([b.electrons_per_nmgy()]),
            read_noise=np.array([b.read_noise]),
            poisson_rng=np.random.default_rng(1),
            read_rng=np.random.default_rng(2),
        )
        img = calibrate(
            e, sky_electrons=sky, electrons_per_nmgy=np.array([b.electrons_per_nmgy()])
        )
        assert img.dtype == np.float32
        assert float(img.var()) == pytest.approx(b.noise_sigma(0.263) ** 2, rel=0.05)
        assert abs(float(img.mean())) < 5 * b.noise_sigma(0.263) / np.sqrt(img.size)

    def test_poisson_signal_variance(self):
        """A bright flat source adds its own shot noise: var = (S + sky + r^2) / c^2."""
        b = BANDS["r"]
        c = b.electrons_per_nmgy()
        sky = np.full((20, 1), b.sky_electrons(0.263))
        model = np.full((20, 1, 64, 64), 2.0)
        e = expose(
            model,
            sky_electrons=sky,
            electrons_per_nmgy=np.array([c]),
            read_noise=np.array([b.read_noise]),
            poisson_rng=np.random.default_rng(3),
            read_rng=np.random.default_rng(4),
        )
        img = calibrate(e, sky_electrons=sky, electrons_per_nmgy=np.array([c]))
        expected = (2.0 * c + sky[0, 0] + b.read_noise**2) / c**2
        assert float(img.var()) == pytest.approx(expected, rel=0.05)
        assert float(img.mean()) == pytest.approx(2.0, rel=1e-3)
