import numpy as np
import pytest
import torch

from astrounsup.simulate import (
    BANDS,
    PixelGrid,
    calibrate,
    convolve_psf,
    expose,
    flux_to_mag,
    mag_to_flux,
    moffat_alpha,
    moffat_kernel,
    render_moffat,
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


class TestConvolvePSF:
    def test_point_source_becomes_kernel(self):
        kernel = moffat_kernel([1.2], pixel_scale=0.263)
        image = torch.zeros(1, 61, 61)
        image[0, 30, 30] = 5.0
        out = convolve_psf(image, kernel)
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
        out = convolve_psf(image, k)[0].double().numpy()
        assert measured_fwhm(out, ps) == pytest.approx(1.0, rel=0.05)

    def test_rejects_even_or_large_kernels(self):
        with pytest.raises(ValueError, match="odd side"):
            convolve_psf(torch.zeros(1, 8, 8), torch.zeros(1, 4, 4))
        with pytest.raises(ValueError, match="exceeds the image size"):
            convolve_psf(torch.zeros(1, 8, 8), torch.zeros(1, 9, 9))


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


class TestMagnitudes:
    def test_round_trip(self):
        m = np.array([15.0, 22.5, 27.1])
        np.testing.assert_allclose(flux_to_mag(mag_to_flux(m)), m)
        assert np.isnan(flux_to_mag(-1.0))

    def test_calibration_chain(self):
        b = BANDS["r"]
        # A 22.5 mag source gives 1 nmgy, i.e. 10**(0.4 (zp - 22.5)) ADU times the gain.
        assert b.electrons_per_nmgy() == pytest.approx(b.gain * 10 ** (0.4 * (b.zeropoint - 22.5)))
