import math

import numpy as np
import pytest
import torch
from scipy.ndimage import convolve

from astrounsup.instrument import gaussian_kernel
from astrounsup.transforms import functional as tf

from ..test_instrument import measured_fwhm


def _gaussian_image(n, fwhm_px, *, centre=None):
    c = (n - 1) / 2 if centre is None else centre
    yy, xx = np.mgrid[:n, :n]
    s = fwhm_px / 2.3548
    img = np.exp(-((xx - c) ** 2 + (yy - c) ** 2) / (2 * s * s))
    return img / img.sum()


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(6, 3, 16, 16, generator=g)


class TestRot90Flip:
    def test_four_quarter_turns_are_identity(self, batch):
        out = batch
        for _ in range(4):
            out, _ = tf.rot90(out, torch.ones(6, dtype=torch.long))
        torch.testing.assert_close(out, batch, rtol=0, atol=0)

    def test_matches_numpy_per_sample(self, batch):
        k = torch.tensor([0, 1, 2, 3, 1, 2])
        out, _ = tf.rot90(batch, k)
        for b in range(6):
            np.testing.assert_array_equal(
                out[b].numpy(), np.rot90(batch[b].numpy(), int(k[b]), axes=(1, 2))
            )

    def test_flip_and_masks_move_with_pixels(self, batch):
        masks = torch.zeros(batch.shape, dtype=torch.bool)
        masks[:, :, 2, 3] = True
        out, m = tf.flip(
            batch,
            torch.tensor([1, 0, 1, 0, 0, 1], dtype=torch.bool),
            torch.tensor([0, 0, 1, 1, 0, 0], dtype=torch.bool),
            masks=masks,
        )
        np.testing.assert_array_equal(out[0].numpy(), batch[0].numpy()[:, :, ::-1])
        np.testing.assert_array_equal(out[3].numpy(), batch[3].numpy()[:, ::-1, :])
        assert m[0, :, 2, 12].all()
        assert m[3, :, 13, 3].all()
        assert m[2, :, 13, 12].all()
        _rot, mrot = tf.rot90(batch, torch.full((6,), 1), masks=masks)
        assert mrot[:, :, 12, 2].all()  # (row 2, col 3) -> (row 15-3, col 2)
        assert int(mrot.sum()) == int(masks.sum())

    def test_rot90_needs_square(self):
        with pytest.raises(ValueError, match="rot90 needs square cutouts"):
            tf.rot90(torch.zeros(1, 1, 4, 5), torch.tensor([1]))


class TestRotate:
    @pytest.mark.parametrize("angle", [17.0, 45.0, 133.0, 251.0])
    @pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
    def test_conserves_flux_of_centred_source(self, angle, interpolation):
        img = torch.from_numpy(_gaussian_image(64, 4.0)).float()[None, None]
        out, m = tf.rotate(img, torch.tensor([angle]), interpolation=interpolation)
        assert out.shape[-1] == math.floor(64 / math.sqrt(2))
        assert float(out.sum()) == pytest.approx(1.0, rel=0.01)
        assert m is None

    def test_rotates_counter_clockwise(self):
        img = torch.zeros(1, 1, 33, 33)
        img[0, 0, 16, 26] = 1.0  # 10 px along +x from the centre
        out, _ = tf.rotate(img, torch.tensor([90.0]), size=23)
        r, c = np.unravel_index(int(out[0, 0].argmax()), out.shape[-2:])
        assert (r, c) == (11 + 10, 11)  # now along +y (rows grow upwards in origin="lower")

    def test_masks_follow(self):
        img = torch.zeros(1, 1, 33, 33)
        masks = torch.zeros(1, 1, 33, 33, dtype=torch.bool)
        masks[0, 0, 16, 26] = True
        _, m = tf.rotate(img, torch.tensor([90.0]), size=23, masks=masks)
        assert m[0, 0, 21, 11]

    def test_crop_too_large(self):
        with pytest.raises(ValueError, match="would take pixels from outside"):
            tf.rotate(torch.zeros(1, 1, 20, 20), torch.tensor([45.0]), size=18)

    def test_bad_interpolation(self):
        with pytest.raises(ValueError, match="interpolation must be 'bilinear' or 'bicubic'"):
            tf.rotate(torch.zeros(1, 1, 8, 8), torch.tensor([1.0]), interpolation="nearest")


class TestCrops:
    def test_per_sample_crop_matches_slicing(self, batch):
        top, left = torch.tensor([0, 1, 2, 3, 4, 5]), torch.tensor([5, 4, 3, 2, 1, 0])
        out, _ = tf.crop(batch, top, left, 8)
        for b in range(6):
            t, l_ = int(top[b]), int(left[b])
            torch.testing.assert_close(out[b], batch[b, :, t : t + 8, l_ : l_ + 8])

    def test_crop_outside(self, batch):
        with pytest.raises(ValueError, match="leaves the 16x16 cutouts"):
            tf.crop(batch, torch.full((6,), 10), torch.zeros(6, dtype=torch.long), 8)

    def test_center_crop_parity(self, batch):
        out, _ = tf.center_crop(batch, 10)
        torch.testing.assert_close(out, batch[..., 3:13, 3:13])
        with pytest.raises(ValueError, match="parity"):
            tf.center_crop(batch, 9)


class TestZoom:
    @pytest.mark.parametrize("scale", [0.9, 1.1, 1.3])
    def test_conserves_flux(self, scale):
        img = torch.from_numpy(_gaussian_image(64, 5.0)).float()[None, None]
        out, m = tf.zoom(img, torch.tensor([scale]))
        assert float(out.sum()) == pytest.approx(1.0, rel=0.01)
        assert bool(m.any()) == (scale < 1)

    def test_bad_scale(self):
        with pytest.raises(ValueError, match="zoom scale must be > 0"):
            tf.zoom(torch.zeros(1, 1, 8, 8), torch.tensor([0.0]))


class TestPSF:
    @pytest.mark.parametrize("fwhm", [0.0, 0.5, 1.2])
    def test_gaussian_kernel_sums_to_one(self, fwhm):
        k = gaussian_kernel(torch.tensor([fwhm]), pixel_scale=0.2)
        assert float(k.sum()) == pytest.approx(1.0, abs=1e-6)

    @pytest.mark.parametrize(("fwhm_in", "fwhm_out"), [(0.9, 1.2), (1.0, 1.8), (1.1, 1.1)])
    @pytest.mark.parametrize("kernel", ["gaussian", "moffat"])
    def test_blurred_point_source_fwhm(self, fwhm_in, fwhm_out, kernel):
        ps = 0.2
        img = torch.from_numpy(_gaussian_image(81, fwhm_in / ps)).float()[None, None]
        out = tf.psf_degrade(img, fwhm_in, fwhm_out, pixel_scale=ps, kernel=kernel)
        k = math.sqrt(fwhm_out**2 - fwhm_in**2)
        assert float(out.sum()) == pytest.approx(1.0, abs=1e-4)
        if kernel == "gaussian":
            expected = math.sqrt(fwhm_in**2 + k**2)
            assert measured_fwhm(out[0, 0].double().numpy(), ps) == pytest.approx(
                expected, rel=0.05
            )
        else:  # a Moffat core convolved with a Gaussian: wider than the input, within bounds
            got = measured_fwhm(out[0, 0].double().numpy(), ps)
            assert fwhm_in * 0.99 <= got <= (fwhm_in + k) * 1.01

    def test_matches_direct_convolution_with_the_kernel(self):
        g = torch.Generator().manual_seed(1)
        img = torch.randn(1, 2, 40, 40, generator=g)
        out = tf.psf_degrade(
            img, torch.tensor([0.8, 1.0]), torch.tensor([1.2, 1.5]), pixel_scale=0.263
        )
        kfwhm = tf.psf_kernel_fwhm(torch.tensor([0.8, 1.0]), torch.tensor([1.2, 1.5]))
        for j in range(2):
            kern = gaussian_kernel(kfwhm[j : j + 1], pixel_scale=0.263)[0].double().numpy()
            ref = convolve(img[0, j].double().numpy(), kern, mode="reflect")
            inner = np.s_[8:-8, 8:-8]
            np.testing.assert_allclose(out[0, j].numpy()[inner], ref[inner], atol=2e-3)

    def test_cannot_sharpen(self):
        with pytest.raises(ValueError, match=r"fwhm_out must be >= fwhm_in .*=0\.8 < fwhm_in=1"):
            tf.psf_degrade(torch.zeros(1, 1, 16, 16), 1.0, 0.8, pixel_scale=0.2)

    def test_bad_kernel(self):
        with pytest.raises(ValueError, match="kernel must be 'gaussian' or 'moffat'"):
            tf.psf_degrade(torch.zeros(1, 1, 16, 16), 1.0, 1.2, pixel_scale=0.2, kernel="box")


class TestPhotometry:
    def test_sky_noise_has_the_requested_sigma(self):
        x = torch.zeros(64, 3, 32, 32)
        sigma = torch.tensor([0.5, 1.0, 2.0])
        out = tf.add_sky_noise(x, sigma, generator=torch.Generator().manual_seed(3))
        np.testing.assert_allclose(out.std(dim=(0, 2, 3)).numpy(), sigma.numpy(), rtol=0.03)

    def test_negative_sigma(self):
        with pytest.raises(ValueError, match="noise sigma must be >= 0"):
            tf.add_sky_noise(torch.zeros(1, 1, 4, 4), -1.0)

    def test_poisson_noise_variance(self):
        x = torch.full((32, 1, 32, 32), 3.0)
        out = tf.add_poisson_noise(x, 50.0, generator=torch.Generator().manual_seed(4))
        assert float(out.var()) == pytest.approx(3.0 / 50.0, rel=0.03)
        assert float(out.mean()) == pytest.approx(3.0, rel=0.002)
        with pytest.raises(ValueError, match="gain must be > 0"):
            tf.add_poisson_noise(x, 0.0)

    def test_reddening_formula(self, batch):
        ebv = torch.linspace(0, 0.5, 6)
        coeff = [3.237, 2.176, 1.595]
        out = tf.redden(batch, ebv, coeff)
        for b in range(6):
            for j in range(3):
                factor = 10 ** (-0.4 * coeff[j] * float(ebv[b]))
                torch.testing.assert_close(out[b, j], batch[b, j] * factor)
        with pytest.raises(ValueError, match=r"one value per band \(3\)"):
            tf.redden(batch, ebv, [1.0, 2.0])

    def test_rectangles(self):
        m = tf.mask_rectangles(
            (2, 1, 8, 8),
            torch.tensor([[1, 0], [0, 0]]),
            torch.tensor([[2, 0], [0, 0]]),
            torch.tensor([[2, 0], [3, 1]]),
            torch.tensor([[3, 0], [1, 1]]),
        )
        assert int(m[0].sum()) == 6
        assert int(m[1].sum()) == 3

    def test_not_a_batch(self):
        with pytest.raises(ValueError, match=r"images must be a tensor of shape \(B, bands"):
            tf.add_sky_noise(torch.zeros(4, 4), 1.0)
