import numpy as np
import pytest
import torch
from astropy.stats import mad_std, sigma_clip

from astrounsup.io import AsinhNormalizer, border_pixels, estimate_sky

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


class TestAsinhNormalizer:
    def test_formula(self, small_survey):
        x = np.nan_to_num(small_survey.images[:12])
        norm = AsinhNormalizer(softening=2.0, percentile=99.0).fit(x)
        y, sky, noise = norm.transform(x, return_stats=True)
        expected = np.arcsinh((x - sky[..., None, None]) / (2.0 * noise[..., None, None]))
        np.testing.assert_allclose(y, expected / norm.scale_[:, None, None], rtol=1e-4, atol=1e-5)
        # The scale puts the chosen percentile of each band at 1.
        for j in range(3):
            assert np.percentile(expected[:, j], 99.0) == pytest.approx(norm.scale_[j], rel=0.02)

    def test_inverse_round_trip(self, small_survey):
        x = np.nan_to_num(small_survey.images[:6])
        norm = AsinhNormalizer().fit(x)
        y, sky, noise = norm.transform(x, return_stats=True)
        back = norm.inverse_transform(y, sky=sky, noise=noise)
        np.testing.assert_allclose(back, x, atol=1e-5, rtol=1e-4)

    def test_recorded_parameters_apply_identically(self, small_survey):
        x = np.nan_to_num(small_survey.images[:6])
        norm = AsinhNormalizer(softening=1.5).fit(x)
        again = AsinhNormalizer.from_dict(norm.to_dict())
        np.testing.assert_array_equal(again.transform(x), norm.transform(x))
        assert again.to_dict() == norm.to_dict()

    def test_unfitted(self):
        from sklearn.exceptions import NotFittedError

        with pytest.raises(NotFittedError, match="not fitted yet"):
            AsinhNormalizer().transform(np.zeros((1, 1, 16, 16)))

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"softening": 0.0}, "softening must be a number > 0"),
            ({"percentile": 0.0}, r"percentile must be in \(0, 100\]"),
        ],
    )
    def test_bad_parameters(self, kwargs, match):
        with pytest.raises(ValueError, match=match):
            AsinhNormalizer(**kwargs).fit(RNG.normal(size=(2, 1, 16, 16)))

    def test_band_count_mismatch(self):
        norm = AsinhNormalizer().fit(RNG.normal(size=(2, 2, 16, 16)))
        with pytest.raises(ValueError, match="fitted on 2 bands but given 3"):
            norm.transform(RNG.normal(size=(1, 3, 16, 16)))


def _scene(rng, n, bands=2, size=32, noise=0.05):
    """``n`` cutouts of a Gaussian blob on a Gaussian-noise sky."""
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    blob = np.exp(-0.5 * (xx**2 + yy**2) / 3.0**2)
    amp = rng.uniform(0.5, 3.0, (n, bands, 1, 1))
    return (amp * blob + rng.normal(0.0, noise, (n, bands, size, size))).astype(np.float32)


class TestUnmeasurableNoise:
    """Borders with zero spread: flat sky, constant padding, all masked, clipped to 0."""

    def test_flat_borders_among_good_cutouts_use_the_band_median(self):
        rng = np.random.default_rng(3)
        x = _scene(rng, 20)
        x[4] = np.round(x[4], 0)  # flat border (JPEG-like sky)
        x[7, :, :6, :] = 0.0  # constant-padded edge ...
        x[7, :, -6:, :] = 0.0
        x[7, :, :, :6] = 0.0
        x[7, :, :, -6:] = 0.0
        x[9, 1, :4, :] = np.nan  # ... and an all-masked border in one band
        x[9, 1, -4:, :] = np.nan
        x[9, 1, :, :4] = np.nan
        x[9, 1, :, -4:] = np.nan
        norm = AsinhNormalizer().fit(x)
        _, noise = estimate_sky(x)
        np.testing.assert_allclose(
            norm.noise_reference_,
            np.nanmedian(np.delete(noise, [4, 7], axis=0), axis=0),
            rtol=0.05,
        )
        assert norm.noise_source_ == ("border", "border")
        flags = norm.noise_flags(x)
        expected = np.zeros((20, 2), dtype=bool)
        expected[[4, 7]] = True
        expected[9, 1] = True
        np.testing.assert_array_equal(flags, expected)
        y = norm.transform(x)
        finite_in = np.isfinite(x)
        assert np.isfinite(y[finite_in]).all()
        # A floored cutout is stretched with the band's reference noise.
        ref = (x[4] - 0.0) / (norm.softening * norm.noise_reference_[:, None, None])
        np.testing.assert_allclose(
            y[4], np.arcsinh(ref) / norm.scale_[:, None, None], rtol=1e-4, atol=1e-6
        )
        y, sky, noise = norm.transform(x[[4, 7]], return_stats=True)
        back = norm.inverse_transform(y, sky=sky, noise=noise)
        np.testing.assert_allclose(back, x[[4, 7]], atol=1e-5)

    def test_a_tiny_but_nonzero_noise_is_floored_too(self):
        rng = np.random.default_rng(4)
        x = _scene(rng, 12)
        x[2] = x[2] * 1e-4  # a border noise 1e-4 of the others'
        norm = AsinhNormalizer(noise_floor=0.05).fit(x)
        assert norm.noise_flags(x)[:, 0].nonzero()[0].tolist() == [2]
        assert not AsinhNormalizer(noise_floor=0.0).fit(x).noise_flags(x).any()

    def test_eight_bit_images_with_a_flat_background(self):
        rng = np.random.default_rng(5)
        x = np.clip(np.round(_scene(rng, 16, bands=3, noise=0.0) * 80 + 12), 0, 255)
        x = x.astype(np.uint8)
        with pytest.warns(UserWarning, match="no cutout has a measurable border noise"):
            norm = AsinhNormalizer().fit(x)
        assert norm.noise_source_ == ("signal",) * 3
        assert norm.noise_flags(x).all()
        y = norm.transform(x)
        assert np.isfinite(y).all()
        assert np.abs(y).max() < 10

    def test_single_band_radio_with_background_exactly_zero(self):
        rng = np.random.default_rng(6)
        x = _scene(rng, 16, bands=1, noise=0.1)
        x[x < 0.3] = 0.0  # the background clipped to 0, as FIRST's preprocessing does
        with pytest.warns(UserWarning, match=r"band 0: .* robust scale of the signal"):
            norm = AsinhNormalizer().fit(x)
        nonzero = x[x > 0]
        assert norm.noise_reference_[0] == pytest.approx(np.median(nonzero) / 5, rel=0.01)
        y = norm.transform(x)
        assert np.isfinite(y).all()
        assert (y[x == 0] == 0).all()

    def test_the_reference_survives_to_dict(self):
        rng = np.random.default_rng(7)
        x = _scene(rng, 8)
        x[1] = 0.0
        x[1, :, 16, 16] = 1.0
        norm = AsinhNormalizer().fit(x)
        again = AsinhNormalizer.from_dict(norm.to_dict())
        np.testing.assert_array_equal(again.transform(x), norm.transform(x))
        np.testing.assert_array_equal(again.noise_flags(x), norm.noise_flags(x))

    def test_a_constant_band_is_refused_by_name(self):
        x = _scene(np.random.default_rng(8), 4)
        x[:, 1] = 3.0
        with pytest.raises(ValueError, match=r"band\(s\) \[1\] of the cutouts are constant"):
            AsinhNormalizer().fit(x)

    @pytest.mark.parametrize("floor", [1.0, -0.1, True, "0.1"])
    def test_bad_noise_floor(self, floor):
        with pytest.raises(ValueError, match=r"noise_floor must be a fraction in \[0, 1\)"):
            AsinhNormalizer(noise_floor=floor).fit(_scene(np.random.default_rng(0), 2))

    def test_noise_flags_needs_images_or_noise(self):
        norm = AsinhNormalizer().fit(_scene(np.random.default_rng(0), 4))
        with pytest.raises(ValueError, match="exactly one of images or noise="):
            norm.noise_flags()


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
        from astrounsup.io import asinh_pixel_noise

        y = np.linspace(-2.0, 3.0, 41)
        scale = [3.0, 4.5]
        x = torch.tensor(np.stack([y, y])[None, :, :, None], dtype=torch.float64)
        sigma = asinh_pixel_noise(x, softening=2.0, scale=scale, flux_error=flux_error)
        for band, c in enumerate(scale):
            ref = self._propagated(y, 2.0, c, flux_error)
            np.testing.assert_allclose(sigma[0, band, :, 0].numpy(), ref, rtol=1e-5)

    def test_sky_on_faint_pixels_relative_error_on_bright_ones(self):
        from astrounsup.io import FLUX_ERROR, asinh_pixel_noise

        x = torch.tensor([0.0, 4.0]).reshape(1, 1, 2, 1)
        sigma = asinh_pixel_noise(x, softening=2.0, scale=[3.0])[0, 0, :, 0]
        assert sigma[0].item() == pytest.approx(1 / (2.0 * 3.0))  # the sky alone
        assert sigma[1].item() == pytest.approx(FLUX_ERROR / 3.0, rel=1e-4)
        # Sky only: a bright pixel's noise falls as 1/cosh, 1e5 times below the sky's.
        sky = asinh_pixel_noise(x, softening=2.0, scale=[3.0], flux_error=0.0)[0, 0, :, 0]
        assert sky[1].item() == pytest.approx(1 / (2.0 * 3.0 * np.cosh(12.0)), rel=1e-5)

    def test_the_normaliser_and_the_function_agree(self, small_survey):
        from astrounsup.io import asinh_pixel_noise

        norm = AsinhNormalizer().fit(np.nan_to_num(small_survey.images[:8]))
        y = norm.transform(np.nan_to_num(small_survey.images[:2]))
        ref = asinh_pixel_noise(torch.as_tensor(y), softening=norm.softening, scale=norm.scale_)
        np.testing.assert_allclose(norm.pixel_noise(y), ref.numpy(), rtol=1e-6)

    @pytest.mark.parametrize("bad", [-0.1, True, "0.1", None, float("nan"), float("inf")])
    def test_bad_flux_error(self, bad):
        from astrounsup.io import asinh_pixel_noise

        with pytest.raises(
            ValueError,
            match=r"asinh_pixel_noise: flux_error must be a finite number in \[0.0, None\]; got",
        ):
            asinh_pixel_noise(torch.zeros(1, 1, 2, 2), softening=2.0, scale=[3.0], flux_error=bad)
