import numpy as np
import pytest
import torch

from astrounsup.instrument import (
    BANDS,
    fft_convolve,
    fft_size,
    flux_to_mag,
    gaussian_kernel,
    gaussian_kernel_1d,
    kernel_half_width,
    mag_to_flux,
    moffat_alpha,
    moffat_kernel,
)


def measured_fwhm(image, pixel_scale):
    """FWHM from the half-maximum crossings of the central row and column (linear interp)."""
    widths = []
    cy, cx = np.unravel_index(np.argmax(image), image.shape)
    for profile in (image[cy, :], image[:, cx]):
        half = profile.max() / 2
        c = int(np.argmax(profile))
        left = c
        while profile[left] > half:
            left -= 1
        right = c
        while profile[right] > half:
            right += 1
        xl = left + (half - profile[left]) / (profile[left + 1] - profile[left])
        xr = right - (half - profile[right]) / (profile[right - 1] - profile[right])
        widths.append((xr - xl) * pixel_scale)
    return float(np.mean(widths))


def fitted_moffat_fwhm(image, pixel_scale, *, beta=3.5, sub=11):
    """FWHM of a pixel-integrated Moffat fitted to ``image`` (free centre and amplitude).

    An independent reference: the model integrates the analytic Moffat over each pixel on a
    ``sub x sub`` grid with plain numpy.
    """
    from scipy.optimize import least_squares

    ny, nx = image.shape
    off = (np.arange(sub) + 0.5) / sub - 0.5
    yy = (np.arange(ny)[:, None] + off[None, :]).ravel()
    xx = (np.arange(nx)[:, None] + off[None, :]).ravel()

    def model(p):
        amp, x0, y0, fwhm = p
        alpha = fwhm / pixel_scale / (2 * np.sqrt(2 ** (1 / beta) - 1))
        r2 = ((xx[None, :] - x0) ** 2 + (yy[:, None] - y0) ** 2) / alpha**2
        sb = (1 + r2) ** -beta
        return amp * sb.reshape(ny, sub, nx, sub).mean(axis=(1, 3))

    cy, cx = np.unravel_index(np.argmax(image), image.shape)
    yy_pix, xx_pix = np.mgrid[:ny, :nx]
    p0 = [image.max(), cx, cy, 4 * pixel_scale]
    # Fit the core, inside the radius where kernels are truncated.
    core = np.hypot(xx_pix - cx, yy_pix - cy) <= 6
    fit = least_squares(lambda p: (model(p) - image)[core], p0, x_scale="jac")
    return float(fit.x[3])


class TestMoffatKernel:
    @pytest.mark.parametrize("fwhm", [0.7, 1.0, 1.6])
    def test_sums_to_one(self, fwhm):
        k = moffat_kernel([fwhm], pixel_scale=0.263)
        assert float(k.sum()) == pytest.approx(1.0, abs=1e-6)
        assert k.shape[-1] % 2 == 1

    @pytest.mark.parametrize("fwhm", [0.8, 1.0, 1.6])
    def test_measured_fwhm_matches_requested(self, fwhm):
        """Well sampled: the half-maximum width itself."""
        k = moffat_kernel([fwhm], pixel_scale=0.04, oversample=3)[0].double().numpy()
        assert measured_fwhm(k, 0.04) == pytest.approx(fwhm, rel=0.05)

    @pytest.mark.parametrize("fwhm", [0.7, 1.0, 1.6])
    def test_fitted_fwhm_at_survey_sampling(self, fwhm):
        """At 0.263 arcsec/px a fit of a pixel-integrated Moffat recovers the FWHM."""
        k = moffat_kernel([fwhm], pixel_scale=0.263, oversample=5)[0].double().numpy()
        assert fitted_moffat_fwhm(k, 0.263) == pytest.approx(fwhm, rel=0.05)

    def test_profile_matches_analytic_moffat(self):
        beta, fwhm, ps = 3.5, 1.0, 0.02
        k = moffat_kernel([fwhm], pixel_scale=ps, beta=beta, oversample=1, radius_fwhm=6.0)
        alpha = moffat_alpha(fwhm, beta)
        r = (np.arange(k.shape[-1]) - k.shape[-1] // 2) * ps
        analytic = (1 + (r / alpha) ** 2) ** -beta
        row = k[0, k.shape[-1] // 2].double().numpy()
        np.testing.assert_allclose(row / row.max(), analytic, atol=2e-3)

    def test_kernel_independent_of_batch(self):
        alone = moffat_kernel([0.9], pixel_scale=0.263, half_width=20)
        with_wide = moffat_kernel([0.9, 2.0], pixel_scale=0.263, half_width=20)
        torch.testing.assert_close(alone[0], with_wide[0])

    @pytest.mark.parametrize(
        ("fwhm", "kwargs", "match"),
        [
            ([0.0], {}, "PSF FWHM must be finite and > 0"),
            ([np.nan], {}, "PSF FWHM must be finite and > 0"),
            ([1.0], {"beta": 1.0}, "Moffat beta must be > 1"),
        ],
    )
    def test_bad_parameters(self, fwhm, kwargs, match):
        with pytest.raises(ValueError, match=match):
            moffat_kernel(fwhm, pixel_scale=0.263, **kwargs)


class TestFFTConvolve:
    def test_point_source_becomes_kernel(self):
        kernel = moffat_kernel([1.2], pixel_scale=0.263)
        image = torch.zeros(1, 61, 61)
        image[0, 30, 30] = 5.0
        out = fft_convolve(image, kernel)
        h = kernel.shape[-1] // 2
        torch.testing.assert_close(
            out[0, 30 - h : 31 + h, 30 - h : 31 + h], 5 * kernel[0], atol=1e-6, rtol=1e-5
        )
        assert float(out.sum()) == pytest.approx(5.0, rel=1e-5)

    def test_blurred_point_source_fwhm(self):
        ps = 0.1
        k = moffat_kernel([1.0], pixel_scale=ps, oversample=3)
        image = torch.zeros(1, 101, 101, dtype=k.dtype)
        image[0, 50, 50] = 1.0
        out = fft_convolve(image, k)[0].double().numpy()
        assert measured_fwhm(out, ps) == pytest.approx(1.0, rel=0.05)

    def test_rejects_even_or_large_kernels(self):
        with pytest.raises(ValueError, match="odd side"):
            fft_convolve(torch.zeros(1, 8, 8), torch.zeros(1, 4, 4))
        with pytest.raises(ValueError, match="exceeds the FFT grid"):
            fft_convolve(torch.zeros(1, 8, 8), torch.zeros(1, 9, 9))

    def test_a_larger_grid_keeps_the_image_size(self):
        kernel = gaussian_kernel(torch.tensor([1.0]), pixel_scale=0.263)
        image = torch.zeros(1, 31, 31)
        image[0, 15, 15] = 1.0
        out = fft_convolve(image, kernel, size=(fft_size(31), fft_size(31)))
        torch.testing.assert_close(out, fft_convolve(image, kernel), atol=1e-6, rtol=1e-5)
        with pytest.raises(ValueError, match="at least the image size"):
            fft_convolve(image, kernel, size=(16, 40))


class TestKernelHalfWidth:
    def test_reach_of_each_profile(self):
        # A Moffat is kept to 3 FWHM, a Gaussian to 4 sigma (1.7 FWHM), each at least 1 px.
        assert kernel_half_width(1.0, 0.25) == 12
        assert kernel_half_width(1.0, 0.25, profile="gaussian") == 7
        assert kernel_half_width(0.0, 0.25, profile="gaussian") == 1
        with pytest.raises(ValueError, match="profile must be one of"):
            kernel_half_width(1.0, 0.25, profile="airy")

    @pytest.mark.parametrize("fwhm", [0.3, 1.0, 2.5])
    def test_gaussian_kernel_is_separable(self, fwhm):
        g = gaussian_kernel_1d(torch.tensor([fwhm]), pixel_scale=0.263, half_width=9)
        k = gaussian_kernel(torch.tensor([fwhm]), pixel_scale=0.263, half_width=9)
        torch.testing.assert_close(k, g[..., :, None] * g[..., None, :])
        sigma = fwhm / 2.3548200450309493 / 0.263
        r = np.arange(-9, 10)
        ref = np.exp(-(r**2) / (2 * sigma**2))
        np.testing.assert_allclose(g[0].numpy(), ref / ref.sum(), rtol=1e-5, atol=1e-7)


class TestMagnitudes:
    def test_round_trip(self):
        m = np.array([15.0, 22.5, 27.1])
        np.testing.assert_allclose(flux_to_mag(mag_to_flux(m)), m)
        assert np.isnan(flux_to_mag(-1.0))

    def test_calibration_chain(self):
        b = BANDS["r"]
        # A 22.5 mag source gives 1 nmgy, i.e. 10**(0.4 (zp - 22.5)) ADU times the gain.
        assert b.electrons_per_nmgy() == pytest.approx(b.gain * 10 ** (0.4 * (b.zeropoint - 22.5)))
