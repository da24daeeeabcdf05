import numpy as np
import pytest
import torch
from scipy.stats import rankdata

from astrounsup.io import CutoutDataset
from astrounsup.latent import (
    SCORERS,
    AnomalyScorer,
    combine_ranks,
    negative_elbo,
    rank_scores,
    reconstruction_error,
)
from astrounsup.models import VAE, ConvAutoencoder


def with_outliers(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, (300, 5))
    x[:3] += 9.0
    return x


class TestAnomalyScorer:
    @pytest.mark.parametrize("method", SCORERS)
    def test_outliers_rank_first(self, method):
        x = with_outliers()
        s = AnomalyScorer(method, n_neighbors=10, random_state=0).fit_score(x)
        assert set(np.argsort(-s)[:3]) == {0, 1, 2}

    def test_knn_score_matches_brute_force(self):
        x = with_outliers()
        s = AnomalyScorer("knn", n_neighbors=7, standardize=False).fit_score(x)
        d = np.linalg.norm(x[:, None] - x[None], axis=-1)
        np.fill_diagonal(d, np.inf)
        ref = np.sort(d, axis=1)[:, :7].mean(1)
        np.testing.assert_allclose(s, ref)
        new = np.array([[0.0] * 5, [20.0] * 5])
        d_new = np.linalg.norm(new[:, None] - x[None], axis=-1)
        est = AnomalyScorer("knn", n_neighbors=7, standardize=False).fit(x)
        np.testing.assert_allclose(est.anomaly_score(new), np.sort(d_new, 1)[:, :7].mean(1))

    @pytest.mark.parametrize("method", ["iforest", "lof"])
    def test_new_objects_far_away_score_higher(self, method):
        est = AnomalyScorer(method, random_state=0).fit(with_outliers())
        s = est.anomaly_score(np.array([[0.0] * 5, [30.0] * 5]))
        assert s[1] > s[0]

    def test_seeded_isolation_forest_is_repeatable(self):
        x = with_outliers()
        a = AnomalyScorer("iforest", random_state=4).fit_score(x)
        b = AnomalyScorer("iforest", random_state=4).fit_score(x)
        np.testing.assert_array_equal(a, b)

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"method": "ocsvm"}, r"method must be one of \['iforest', 'lof', 'knn'\]"),
            ({"method": "knn", "n_neighbors": 400}, "n_neighbors=400 needs more than"),
            ({"n_estimators": 0}, "n_estimators must be an integer >= 1"),
        ],
    )
    def test_bad_settings(self, kwargs, match):
        with pytest.raises(ValueError, match=match):
            AnomalyScorer(**kwargs).fit(with_outliers())


class TestRanks:
    def test_rank_scores_match_scipy(self):
        s = np.random.default_rng(0).normal(size=50)
        s[[3, 9]] = s[5]
        np.testing.assert_allclose(rank_scores(s), (rankdata(s) - 1) / 49)

    def test_nan_stays_nan(self):
        r = rank_scores([1.0, np.nan, 3.0])
        assert np.isnan(r[1])
        np.testing.assert_allclose(r[[0, 2]], [0.0, 1.0])

    def test_combine(self):
        scores = {"a": [1.0, 2.0, 3.0, 4.0], "b": [4.0, 3.0, 2.0, np.nan]}
        # b ranks its three finite scores 1, 0.5, 0; a ranks 0, 1/3, 2/3, 1.
        np.testing.assert_allclose(combine_ranks(scores), [0.5, 5 / 12, 1 / 3, 1.0])
        np.testing.assert_allclose(combine_ranks(scores, how="max"), [1.0, 0.5, 2 / 3, 1.0])
        with pytest.raises(ValueError, match=r"how must be one of \['mean', 'max'\]"):
            combine_ranks(scores, how="median")
        with pytest.raises(ValueError, match="scores is empty"):
            combine_ranks({})


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


class Zero(torch.nn.Module):
    """A model whose reconstruction is empty sky: the residual is the cutout itself."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x):
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
