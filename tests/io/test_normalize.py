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
