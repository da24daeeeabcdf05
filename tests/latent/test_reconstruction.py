import numpy as np
import pytest
import torch

from astrounsup.io import CutoutDataset
from astrounsup.latent import model_scores, negative_elbo, reconstruction_error
from astrounsup.models import VAE, ConvAutoencoder, ReconstructionModel, SimCLR


@pytest.fixture(scope="module")
def dataset():
    rng = np.random.default_rng(0)
    images = rng.normal(0.0, 1.0, (10, 2, 16, 16)).astype(np.float32)
    images[2, 0, 3:6, 3:6] = np.nan
    return CutoutDataset(images, bands=("g", "r"))


def test_reconstruction_error_matches_a_direct_computation(dataset):
    torch.manual_seed(0)
    model = ConvAutoencoder(2, size=16, latent_dim=4, widths=(4, 8)).eval()
    err = reconstruction_error(model, dataset, batch_size=4)
    x, mask, _ = dataset[list(range(10))]
    with torch.no_grad():
        recon = model(x)
    keep = ~mask
    ref = (((recon - x) ** 2) * keep).flatten(1).sum(1) / keep.flatten(1).sum(1)
    np.testing.assert_allclose(err, ref.numpy(), rtol=1e-5)
    assert mask[2].any()
    worst = reconstruction_error(model, dataset, reduction="max")
    ref_max = (((recon - x) ** 2) * keep).flatten(1).max(1).values
    np.testing.assert_allclose(worst, ref_max.numpy(), rtol=1e-5)
    allowed = r"reduction must be one of \['mean', 'max', 'extended'\]"
    with pytest.raises(ValueError, match=allowed):
        reconstruction_error(model, dataset, reduction="median")


class Zero(ReconstructionModel):
    """A model whose reconstruction is empty sky: the residual is the cutout itself."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))

    def reconstruct(self, x):
        return torch.zeros_like(x) * self.w


def windowed_reference(resid, keep, k):
    """The ``extended`` reduction by explicit loops over windows (edge-cut, masked out)."""
    _, ny, nx = resid.shape
    h = k // 2
    total, windows = 0.0, 0
    for i in range(ny):
        for j in range(nx):
            sl = (slice(None), slice(max(i - h, 0), i + h + 1), slice(max(j - h, 0), j + h + 1))
            n = keep[sl].sum()
            if n:
                total += (resid[sl].sum() / n) ** 2
                windows += 1
    return total / windows


@pytest.mark.parametrize("k", [1, 3, 5])
def test_extended_reduction_matches_explicit_windows(dataset, k):
    torch.manual_seed(0)
    model = ConvAutoencoder(2, size=16, latent_dim=4, widths=(4, 8)).eval()
    err = reconstruction_error(model, dataset, reduction="extended", smoothing=k, batch_size=4)
    x, mask, _ = dataset[list(range(10))]
    with torch.no_grad():
        keep = (~mask).numpy().astype(float)
        resid = (x - model(x)).numpy().astype(float) * keep
    ref = [windowed_reference(resid[i], keep[i], k) for i in range(10)]
    np.testing.assert_allclose(err, ref, rtol=1e-4)


def test_extended_reduction_finds_light_below_the_pixel_noise():
    # A faint annulus (0.4 sigma per pixel over a sixth of the cutout, like a reflection
    # ghost) on one of 30 noise cutouts: a 2% rise of the per-pixel mean, a 4.6-fold rise
    # of the window-averaged residual.
    rng = np.random.default_rng(3)
    images = rng.normal(0.0, 1.0, (30, 3, 64, 64)).astype(np.float32)
    yy, xx = np.mgrid[:64, :64] - 31.5
    r = np.hypot(yy, xx)
    images[7] += (0.4 * ((r > 10) & (r < 18))).astype(np.float32)
    data = CutoutDataset(images, bands=("g", "r", "i"))
    mean = reconstruction_error(Zero(), data)
    extended = reconstruction_error(Zero(), data, reduction="extended", smoothing=9)
    assert np.argmax(extended) == 7
    contrast = extended[7] / np.median(extended)
    assert contrast > 4
    assert contrast > 3 * mean[7] / np.median(mean)


def test_extended_reduction_is_nan_only_for_a_fully_masked_cutout():
    images = np.random.default_rng(1).normal(size=(3, 2, 16, 16)).astype(np.float32)
    images[1] = np.nan
    images[2, :, :, :8] = np.nan
    data = CutoutDataset(images, bands=("g", "r"))
    err = reconstruction_error(Zero(), data, reduction="extended")
    assert np.isnan(err[1])
    assert np.isfinite(err[[0, 2]]).all()


@pytest.mark.parametrize("smoothing", [0, 4, 17, True, 2.0])
def test_bad_smoothing(dataset, smoothing):
    model = Zero()
    with pytest.raises(ValueError, match=r"reconstruction_error: smoothing must be an "):
        reconstruction_error(model, dataset, reduction="extended", smoothing=smoothing)


def test_vae_scores_are_deterministic_and_use_the_posterior_mean(dataset):
    torch.manual_seed(0)
    vae = VAE(2, size=16, latent_dim=4, widths=(4, 8)).eval()
    a = negative_elbo(vae, dataset, seed=1)
    b = negative_elbo(vae, dataset, seed=1)
    np.testing.assert_array_equal(a, b)
    x, mask, _ = dataset[list(range(10))]  # one batch, as negative_elbo drew it
    with torch.no_grad():
        terms = vae.elbo(x, mask=mask, generator=torch.Generator().manual_seed(1))
    np.testing.assert_allclose(a, -terms["elbo"].numpy(), rtol=1e-5)
    r1 = reconstruction_error(vae, dataset)
    np.testing.assert_array_equal(r1, reconstruction_error(vae, dataset))
    with torch.no_grad():
        mean = vae.decode(vae.posterior(x)[0])[0]
    keep = ~mask
    ref = (((mean - x) ** 2) * keep).flatten(1).sum(1) / keep.flatten(1).sum(1)
    np.testing.assert_allclose(r1, ref.numpy(), rtol=1e-5)


def test_a_model_without_a_decoder_is_refused(dataset):
    model = SimCLR(2, size=16, latent_dim=4, widths=(4, 8))
    with pytest.raises(ValueError, match="a SimCLR has no decoder, so no reconstruction error"):
        reconstruction_error(model, dataset)


def test_negative_elbo_needs_a_vae(dataset):
    model = ConvAutoencoder(2, size=16, latent_dim=4, widths=(4, 8))
    with pytest.raises(TypeError, match="needs a VAE"):
        negative_elbo(model, dataset)


@pytest.mark.needs_cuda
def test_model_scores_on_cuda_match_cpu(dataset):
    torch.manual_seed(0)
    vae = VAE(2, size=16, latent_dim=4, widths=(4, 8)).eval()
    cpu = reconstruction_error(vae, dataset, device="cpu", reduction="max")
    gpu = reconstruction_error(vae, dataset, device="cuda", reduction="max")
    np.testing.assert_allclose(gpu, cpu, rtol=1e-3, atol=1e-6)
    cpu = reconstruction_error(vae, dataset, device="cpu", reduction="extended")
    gpu = reconstruction_error(vae, dataset, device="cuda", reduction="extended")
    np.testing.assert_allclose(gpu, cpu, rtol=1e-3, atol=1e-6)
    elbo = negative_elbo(vae, dataset, device="cuda", seed=1)
    assert elbo.shape == (10,)
    assert np.isfinite(elbo).all()


@pytest.fixture(scope="module")
def fitted(small_survey):
    from astrounsup.training import train

    config = {"model": {"latent_dim": 4, "widths": [4, 8]},
              "training": {"max_steps": 2, "batch_size": 8}}  # fmt: skip
    return train(small_survey.images[:24], model="vae", config=config,
                 bands=small_survey.bands, progress=False)  # fmt: skip


class TestModelScores:
    def test_every_score_of_a_trained_vae(self, fitted, small_survey, tmp_path):
        images = small_survey.images[:24]
        scores = model_scores(fitted, images, progress=False)
        bands = [f"chi2_{b}" for b in fitted.bands]
        assert sorted(scores) == sorted(
            ["elbo", "chi2", "chi2_extended", "chi2_max", "line", *bands]
        )
        data = fitted.dataset(images)
        # A direct reference: residuals over one noise sigma (the sky's, 1 / softening, and
        # 10% of the flux z = sinh(c x), in quadrature) through the asinh derivative.
        x, masks, _ = data[list(range(24))]
        with torch.no_grad():
            recon = fitted.model.reconstruct(x).numpy().astype(np.float64)
        x, keep = x.numpy().astype(np.float64), ~masks.numpy()
        c = np.asarray(fitted.normalizer.scale_)[None, :, None, None]
        z = np.sinh(c * x)
        sigma_z = np.sqrt(fitted.normalizer.softening**-2.0 + (0.1 * z) ** 2)
        sigma = sigma_z / (c * np.sqrt(1 + z**2))
        chi = (x - recon) / sigma * keep
        np.testing.assert_allclose(scores["chi2"], (chi**2).sum((1, 2, 3)) / keep.sum((1, 2, 3)),
                                   rtol=1e-4)  # fmt: skip
        np.testing.assert_allclose(scores["chi2_max"], (chi**2).max((1, 2, 3)), rtol=1e-4)
        for j, key in enumerate(bands):
            ref = (chi[:, j] ** 2).sum((1, 2)) / keep[:, j].sum((1, 2))
            np.testing.assert_allclose(scores[key], ref, rtol=1e-4)
        from scipy.signal import convolve2d

        box = np.ones((5, 5))
        ext = []
        for i in range(24):
            total = convolve2d(chi[i].sum(0), box, mode="same")
            count = convolve2d(keep[i].sum(0).astype(float), box, mode="same")
            ok = count > 0.5
            ext.append(np.mean(total[ok] ** 2 / count[ok]))
        np.testing.assert_allclose(scores["chi2_extended"], ext, rtol=1e-4)
        from astrounsup.latent.reconstruction import _line_score

        line = _line_score(torch.as_tensor(chi), torch.as_tensor(keep, dtype=torch.float32))
        np.testing.assert_allclose(scores["line"], line.numpy(), rtol=1e-4)
        np.testing.assert_allclose(
            scores["chi2"], reconstruction_error(fitted.model, data, units="noise")
        )
        np.testing.assert_allclose(scores["elbo"], negative_elbo(fitted.model, data))
        # From its checkpoint, the same scores.
        path = fitted.save(tmp_path / "vae.pt")
        again = model_scores(path, images, progress=False)
        for key, value in scores.items():
            np.testing.assert_allclose(again[key], value)

    def test_a_contrastive_model_is_refused_naming_its_checkpoint(self, small_survey, tmp_path):
        from astrounsup.training import train

        config = {"model": {"latent_dim": 4, "widths": [4, 8]},
                  "training": {"max_steps": 1, "batch_size": 8}}  # fmt: skip
        simclr = train(small_survey.images[:24], model="simclr", config=config,
                       bands=small_survey.bands, pixel_scale=0.263, progress=False)  # fmt: skip
        path = simclr.save(tmp_path / "simclr.pt")
        with pytest.raises(ValueError, match=r"a SimCLR has no decoder.*simclr\.pt"):
            model_scores(path, small_survey.images[:24], progress=False)


@pytest.fixture(scope="module")
def encoder(small_survey):
    """A context encoder (the inpaint recipe) trained for two steps."""
    from astrounsup.training import train

    return train(small_survey.images[:32], model="inpaint", progress=False,
                 config={"model": {"latent_dim": 4, "widths": [4, 8]},
                         "training": {"max_steps": 2, "batch_size": 8}})  # fmt: skip


class TestInpaintingScores:
    def test_against_a_direct_reference(self, encoder, small_survey):
        from astrounsup.latent import inpainting_scores

        data = encoder.dataset(small_survey.images[:10])
        scores = inpainting_scores(encoder.model, data, tile=16)
        x, masks, _ = data[list(range(10))]
        keep = ~masks.numpy()
        yy, xx = np.mgrid[:64, :64] // 16
        chi2 = np.zeros(x.shape)
        with torch.no_grad():
            for colour in (0, 1):
                board = torch.from_numpy((yy + xx) % 2 == colour)
                holes = board[None, None].expand(10, 1, 64, 64)
                pred = encoder.model.inpaint(x, holes).numpy()
                sigma = encoder.normalizer.pixel_noise(x).numpy()
                r2 = ((pred - x.numpy()) / sigma) ** 2
                chi2 = np.where(holes.numpy(), r2, chi2)
        chi2 = chi2 * keep
        mean = chi2.sum((1, 2, 3)) / keep.sum((1, 2, 3))
        np.testing.assert_allclose(scores["inpaint_chi2"], mean, rtol=1e-4)
        np.testing.assert_allclose(scores["inpaint_chi2_max"], chi2.max((1, 2, 3)), rtol=1e-4)
        tiles = (yy * 4 + xx).ravel()
        for i in range(10):
            total = np.bincount(tiles, chi2[i].sum(0).ravel(), 16)
            count = np.bincount(tiles, keep[i].sum(0).ravel(), 16)
            assert scores["inpaint_chi2_tile"][i] == pytest.approx((total / count).max(), rel=1e-4)

    def test_model_scores_of_a_context_encoder_hold_them(self, encoder, small_survey):
        scores = model_scores(encoder, small_survey.images[:10], progress=False)
        assert {"inpaint_chi2", "inpaint_chi2_max", "inpaint_chi2_tile", "chi2"} <= set(scores)

    def test_other_models_are_refused(self, fitted, small_survey):
        from astrounsup.latent import inpainting_scores

        with pytest.raises(TypeError, match="needs a ContextEncoder"):
            inpainting_scores(fitted.model, fitted.dataset(small_survey.images[:4]))


def lower_median(v):
    v = np.sort(v[np.isfinite(v)])
    return v[(len(v) - 1) // 2] if len(v) else np.nan


class TestLineScore:
    """The trail statistic of :func:`model_scores` (``"line"``)."""

    def test_at_right_angles_it_is_the_best_row_or_column_median(self):
        from astrounsup.latent.reconstruction import _line_score

        rng = np.random.default_rng(1)
        resid = rng.normal(size=(4, 2, 12, 12))
        keep = rng.uniform(size=resid.shape) > 0.2
        got = _line_score(torch.as_tensor(resid), torch.as_tensor(keep, dtype=torch.float64),
                          step=90.0).numpy()  # fmt: skip
        # Reference: 2 x 2 sums over sqrt(count), then every row and column of the bins.
        r = (resid * keep).reshape(4, 2, 6, 2, 6, 2).sum((3, 5))
        n = keep.reshape(4, 2, 6, 2, 6, 2).sum((3, 5))
        binned = np.where(n > 0, r / np.sqrt(np.maximum(n, 1)), np.nan)
        ref = np.full(4, -np.inf)
        for i in range(4):
            for b in range(2):
                for line in [*binned[i, b], *binned[i, b].T]:
                    m = np.isfinite(line).sum()
                    if m >= 3:
                        z = lower_median(line) * np.sqrt(m) / np.sqrt(np.pi / 2)
                        ref[i] = max(ref[i], z)
        np.testing.assert_allclose(got, ref, rtol=1e-6)

    def test_a_faint_trail_stands_out_and_a_bright_compact_residual_does_not(self):
        from astrounsup.latent.reconstruction import _line_score

        rng = np.random.default_rng(2)
        resid = rng.normal(size=(40, 3, 64, 64))
        yy, xx = np.mgrid[:64, :64]
        across = (yy - 30.0) * np.cos(0.7) - (xx - 35.0) * np.sin(0.7)
        resid[0, 1] += 0.8 * (np.abs(across) < 2.0)  # under the noise, one band, 4 px wide
        resid[1, :, 28:36, 28:36] += 5.0  # a badly fitted core: 5 sigma over 8 x 8 px
        chi2 = (resid**2).mean((1, 2, 3))
        assert chi2[1] > chi2[0] + 0.3  # the core is far worse in the mean chi-square
        z = _line_score(torch.as_tensor(resid), torch.as_tensor(np.ones_like(resid))).numpy()
        assert z[0] > 1.3 * max(z[1], np.max(z[2:]))
        assert 3.0 < np.median(z[2:]) < 6.0  # white noise: the largest of ~1e4 lines

    def test_masked_pixels_do_not_count_and_an_all_masked_cutout_is_nan(self):
        from astrounsup.latent.reconstruction import _line_score

        rng = np.random.default_rng(3)
        resid = rng.normal(size=(2, 1, 32, 32))
        keep = np.ones_like(resid)
        resid[0, 0, 10:12, :] = 1e6  # a masked bleed column's values
        keep[0, 0, 10:12, :] = 0
        keep[1] = 0
        z = _line_score(torch.as_tensor(resid), torch.as_tensor(keep)).numpy()
        assert z[0] < 8.0
        assert np.isnan(z[1])
