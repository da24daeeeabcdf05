import numpy as np
import pytest
import torch
from astropy.stats import mad_std, sigma_clip

from astrounsup.noise import FLUX_ERROR, asinh_pixel_noise, border_pixels, estimate_sky

RNG = np.random.default_rng(8)
_MAD = 1.482602218505602  # 1 / Phi^-1(3/4): MAD to Gaussian sigma


def _border(img, b):
    return np.concatenate(
        [img[:b].ravel(), img[-b:].ravel(), img[b:-b, :b].ravel(), img[b:-b, -b:].ravel()]
    )


class TestEstimateSky:
    def test_matches_astropy_sigma_clip(self, small_survey):
        images = small_survey.images[:10]
        sky, noise = estimate_sky(images, border=4, clip=3.0, iters=10)
        for i in range(10):
            for j in range(3):
                border = _border(images[i, j], 4)
                border = border[np.isfinite(border)]
                kept = sigma_clip(
                    border, sigma=3.0, maxiters=10, stdfunc="mad_std", cenfunc="median"
                ).compressed()
                med, std = np.median(kept), mad_std(kept)
                assert sky[i, j] == pytest.approx(float(med), abs=0.05 * float(std))
                assert noise[i, j] == pytest.approx(float(std), rel=0.05)

    def test_recovers_truth_of_simulation(self, star_survey):
        stars = np.asarray(star_survey.table["kind"]) == "star"
        _, noise = estimate_sky(star_survey.images[stars])
        truth = star_survey.table["noise_sigma"].value[stars]
        np.testing.assert_allclose(np.median(noise / truth, axis=0), 1.0, atol=0.03)

    def test_ignores_nan_and_a_source_on_the_border(self):
        img = RNG.normal(2.0, 0.5, (1, 1, 40, 40))
        img[0, 0, :3, :10] = np.nan
        img[0, 0, 0:4, 20:24] += 500.0
        sky, noise = estimate_sky(img)
        assert sky[0, 0] == pytest.approx(2.0, abs=0.05)
        assert noise[0, 0] == pytest.approx(0.5, rel=0.1)

    def test_equals_a_torch_nanmedian_reference(self):
        # The same clipping written with torch.nanmedian: equal to the last bit, with NaN,
        # inf, an all-NaN band border and even and odd numbers of kept pixels.
        img = RNG.normal(3.0, 1.0, (6, 2, 20, 20)).astype(np.float32)
        img[0, 0, :5] = np.nan
        img[1, 1] = np.nan
        img[2, 0, 0, :3] = np.inf
        img[3, :, :4, :4] += 50.0
        frame = border_pixels(torch.from_numpy(img), border=3)
        for _ in range(2):
            med = torch.nanmedian(frame, dim=-1, keepdim=True).values
            mad = torch.nanmedian((frame - med).abs(), dim=-1, keepdim=True).values * _MAD
            frame = torch.where((frame - med).abs() <= 2.5 * mad.clamp_min(1e-30), frame, np.nan)
        ref_sky = torch.nanmedian(frame, dim=-1).values
        ref_noise = torch.nanmedian((frame - ref_sky[..., None]).abs(), dim=-1).values * _MAD
        sky, noise = estimate_sky(img, border=3, clip=2.5, iters=2)
        np.testing.assert_array_equal(sky, ref_sky.numpy())
        np.testing.assert_array_equal(noise, ref_noise.numpy())
        assert np.isnan(sky[1, 1])

    def test_torch_in_torch_out(self):
        sky, _ = estimate_sky(torch.zeros(2, 1, 16, 16))
        assert isinstance(sky, torch.Tensor)
        assert sky.shape == (2, 1)

    @pytest.mark.parametrize(
        ("shape", "kwargs", "match"),
        [
            ((8, 8), {}, r"images must have shape \(n, bands, ny, nx\)"),
            ((1, 1, 8, 8), {"border": 5}, r"border must be in \[1, 4\] px"),
        ],
    )
    def test_bad_input(self, shape, kwargs, match):
        with pytest.raises(ValueError, match=match):
            estimate_sky(np.zeros(shape), **kwargs)


class TestPixelNoise:
    """``asinh_pixel_noise`` against the propagation of a flux error through the stretch."""

    @staticmethod
    def _propagated(y, softening, c, flux_error):
        # z = sinh(c y); a flux error sigma_z = sqrt(1/s^2 + (f z)^2) moves y by
        # sigma_z * dy/dz, with dy/dz from a central finite difference of asinh(z) / c.
        z = np.sinh(c * y)
        h = 1e-4 * np.maximum(1.0, np.abs(z))
        dydz = (np.arcsinh(z + h) - np.arcsinh(z - h)) / (2 * h) / c
        return np.sqrt(1 / softening**2 + (flux_error * z) ** 2) * dydz

    @pytest.mark.parametrize("flux_error", [0.0, 0.05, 0.1, 0.3])
    def test_matches_error_propagation(self, flux_error):
        y = np.linspace(-2.0, 3.0, 41)
        scale = [3.0, 4.5]
        x = torch.tensor(np.stack([y, y])[None, :, :, None], dtype=torch.float64)
        sigma = asinh_pixel_noise(x, softening=2.0, scale=scale, flux_error=flux_error)
        for band, c in enumerate(scale):
            ref = self._propagated(y, 2.0, c, flux_error)
            np.testing.assert_allclose(sigma[0, band, :, 0].numpy(), ref, rtol=1e-5)

    def test_sky_on_faint_pixels_relative_error_on_bright_ones(self):
        x = torch.tensor([0.0, 4.0]).reshape(1, 1, 2, 1)
        sigma = asinh_pixel_noise(x, softening=2.0, scale=[3.0])[0, 0, :, 0]
        assert sigma[0].item() == pytest.approx(1 / (2.0 * 3.0))  # the sky alone
        assert sigma[1].item() == pytest.approx(FLUX_ERROR / 3.0, rel=1e-4)
        # Sky only: a bright pixel's noise falls as 1/cosh, 1e5 times below the sky's.
        sky = asinh_pixel_noise(x, softening=2.0, scale=[3.0], flux_error=0.0)[0, 0, :, 0]
        assert sky[1].item() == pytest.approx(1 / (2.0 * 3.0 * np.cosh(12.0)), rel=1e-5)

    @pytest.mark.parametrize("bad", [-0.1, True, "0.1", None, float("nan"), float("inf")])
    def test_bad_flux_error(self, bad):
        with pytest.raises(
            ValueError,
            match=r"asinh_pixel_noise: flux_error must be a finite number in \[0.0, None\]; got",
        ):
            asinh_pixel_noise(torch.zeros(1, 1, 2, 2), softening=2.0, scale=[3.0], flux_error=bad)
