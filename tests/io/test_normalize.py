import numpy as np
import pytest
import torch

from astrounsup.io import AsinhNormalizer
from astrounsup.noise import estimate_sky

RNG = np.random.default_rng(8)


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
    def test_the_normaliser_and_the_function_agree(self, small_survey):
        from astrounsup.noise import asinh_pixel_noise

        norm = AsinhNormalizer().fit(np.nan_to_num(small_survey.images[:8]))
        y = norm.transform(np.nan_to_num(small_survey.images[:2]))
        ref = asinh_pixel_noise(torch.as_tensor(y), softening=norm.softening, scale=norm.scale_)
        np.testing.assert_allclose(norm.pixel_noise(y), ref.numpy(), rtol=1e-6)
