import numpy as np
import pytest
import torch
from scipy.stats import rankdata

from astrounsup.io import CutoutDataset
from astrounsup.latent import (
    SCORERS,
    AnomalyScorer,
    Reducer,
    combine_ranks,
    context_model_scores,
    contextual_scores,
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


def contextual_reference(scores, latents, k, log=True):
    """Explicit loop: standardise, find the k nearest other objects, subtract the median."""
    z = (latents - latents.mean(0)) / latents.std(0)
    f = np.log(scores) if log else scores
    out = np.full(f.shape, np.nan)
    for i in range(len(z)):
        d = np.sqrt(((z - z[i]) ** 2).sum(1))
        d[i] = np.inf
        nb = np.argsort(d, kind="stable")[:k]
        finite = f[nb][np.isfinite(f[nb])]
        if np.isfinite(f[i]) and finite.size:
            out[i] = f[i] - np.median(finite)
    return out


class TestContextualScores:
    def data(self, n=120, seed=0):
        rng = np.random.default_rng(seed)
        z = rng.normal(0.0, 1.0, (n, 3)) * [1.0, 5.0, 0.2]
        return rng.lognormal(0.0, 1.0, n), z

    @pytest.mark.parametrize(("k", "log"), [(1, True), (7, True), (20, False)])
    def test_matches_an_explicit_neighbour_loop(self, k, log):
        s, z = self.data()
        s[[4, 50]] = np.nan
        np.testing.assert_allclose(
            contextual_scores(s, z, n_neighbors=k, log=log), contextual_reference(s, z, k, log)
        )

    def test_columns_are_scored_alike_and_unstandardised_latents_differ(self):
        s, z = self.data()
        both = np.stack([s, s**2], 1)
        out = contextual_scores(both, z, n_neighbors=9)
        assert out.shape == (120, 2)
        np.testing.assert_allclose(out[:, 0], contextual_scores(s, z, n_neighbors=9))
        np.testing.assert_allclose(out[:, 1], 2 * out[:, 0])  # log(s**2) = 2 log(s)
        raw = contextual_scores(s, z, n_neighbors=9, standardize=False)
        assert not np.allclose(raw, out[:, 0])  # dimension 1 dominates raw distances

    def test_an_object_odd_for_its_group_ranks_first(self):
        rng = np.random.default_rng(1)
        z = np.concatenate([rng.normal(0, 1, (200, 2)), rng.normal(8, 1, (200, 2))])
        # The second group is always reconstructed ~10x worse; object 300 is 3x worse
        # than its group, and object 5 twice as bad as its own.
        s = np.where(np.arange(400) < 200, 1.0, 10.0) * rng.lognormal(0, 0.1, 400)
        s[300] *= 3.0
        s[5] *= 2.0
        assert set(np.argsort(-s)[:2]) != {300, 5}
        out = contextual_scores(s, z, n_neighbors=20)
        assert np.argsort(-out)[:2].tolist() == [300, 5]

    def test_nan_scores(self):
        s, z = self.data(n=30)
        s[3] = np.nan
        out = contextual_scores(s, z, n_neighbors=5)
        assert np.isnan(out[3])
        assert np.isfinite(np.delete(out, 3)).all()
        # Every neighbour unscored: NaN, not a median of nothing.
        s = np.full(30, np.nan)
        s[0] = 1.0
        assert np.isnan(contextual_scores(s, z, n_neighbors=5)).all()

    def test_an_object_is_never_its_own_neighbour_even_among_duplicates(self):
        z = np.zeros((6, 2))
        s = np.array([1.0, 2.0, 4.0, 8.0, 16.0, 32.0])
        out = contextual_scores(s, z, n_neighbors=5, standardize=False)
        expected = [np.log(v) - np.median(np.log(np.delete(s, i))) for i, v in enumerate(s)]
        np.testing.assert_allclose(out, expected)

    @pytest.mark.parametrize(
        ("change", "match"),
        [
            ({"n_neighbors": 0}, "n_neighbors must be an integer >= 1; got 0"),
            ({"n_neighbors": True}, "n_neighbors must be an integer >= 1; got True"),
            ({"n_neighbors": 30}, "n_neighbors=30 needs more than n_neighbors objects; got 30"),
            ({"scores": np.ones((30, 2, 2))}, r"scores must have shape \(n,\) or \(n, m\)"),
            ({"latents": np.ones((29, 3))}, r"latents must have shape \(n, d\) with n = "),
            ({"latents": np.ones(30)}, r"latents must have shape \(n, d\)"),
            ({"latents": np.full((30, 3), np.nan)}, "latents must be finite; got 30 row"),
            ({"scores": np.r_[np.inf, np.ones(29)]}, "scores must be finite or NaN; got 1 inf"),
            ({"scores": np.r_[0.0, np.ones(29)]}, "scores must be > 0 with log=True"),
        ],
    )
    def test_bad_input(self, change, match):
        s, z = self.data(n=30)
        kwargs = {"scores": s, "latents": z, "n_neighbors": 5} | change
        with pytest.raises(ValueError, match=match):
            contextual_scores(kwargs.pop("scores"), kwargs.pop("latents"), **kwargs)

    def test_zero_and_negative_scores_are_fine_without_the_log(self):
        s, z = self.data(n=30)
        s[0] = -1.0
        out = contextual_scores(s, z, n_neighbors=5, log=False)
        np.testing.assert_allclose(out, contextual_reference(s, z, 5, log=False))


class TestContextModelScores:
    ERRORS = ("recon", "recon_max", "recon_extended")

    def data(self, n=60, seed=0):
        rng = np.random.default_rng(seed)
        context = rng.normal(size=(n, 6)) * [4.0, 2.0, 1.0, 1.0, 0.5, 0.1]
        scores = {k: rng.lognormal(size=n) for k in self.ERRORS}
        scores["elbo"] = rng.normal(size=n)  # a log-likelihood: negative values are fine
        return scores, context

    def test_matches_pca_then_contextual_scores_and_a_joint_lof(self):
        scores, context = self.data()
        out = context_model_scores(scores, context, n_neighbors=5, n_components=3, seed=2)
        z = Reducer("pca", n_components=3, standardize=False, random_state=2)
        z = z.fit_transform(context)
        for k in self.ERRORS:
            ref = contextual_scores(scores[k], z, n_neighbors=5)
            np.testing.assert_allclose(out[f"{k}_context"], ref)
        ref = contextual_scores(scores["elbo"], z, n_neighbors=5, log=False)
        np.testing.assert_allclose(out["elbo_context"], ref)
        errors = np.log(np.stack([scores[k] for k in self.ERRORS], 1))
        joint = AnomalyScorer("lof", n_neighbors=5).fit_score(np.hstack([z, errors]))
        np.testing.assert_allclose(out["context_lof"], joint)

    @pytest.mark.parametrize("n_components", [0, 6, 9])
    def test_all_dimensions_without_reduction(self, n_components):
        scores, context = self.data()
        del scores["elbo"]
        out = context_model_scores(scores, context, n_neighbors=5, n_components=n_components)
        assert sorted(out) == ["context_lof", *sorted(f"{k}_context" for k in self.ERRORS)]
        np.testing.assert_allclose(
            out["recon_context"], contextual_scores(scores["recon"], context, n_neighbors=5)
        )

    def test_cutouts_without_reconstruction_errors_are_left_out_of_the_lof(self):
        scores, context = self.data()
        scores["recon"][[3, 17]] = np.nan  # every pixel masked: no error
        out = context_model_scores(scores, context, n_neighbors=5, n_components=0)
        ok = np.ones(60, dtype=bool)
        ok[[3, 17]] = False
        assert np.isnan(out["context_lof"][~ok]).all()
        assert np.isnan(out["recon_context"][~ok]).all()
        errors = np.log(np.stack([scores[k] for k in self.ERRORS], 1))
        joint = AnomalyScorer("lof", n_neighbors=5).fit_score(np.hstack([context, errors])[ok])
        np.testing.assert_allclose(out["context_lof"][ok], joint)

    @pytest.mark.parametrize(
        ("change", "match"),
        [
            ({"n_components": -1}, "n_components must be an integer >= 0; got -1"),
            ({"drop": "recon_max"}, r"missing \['recon_max'\], unknown \[\]"),
            ({"add": "recon_min"}, r"missing \[\], unknown \['recon_min'\]"),
            ({"context": np.full((60, 6), np.nan)}, "context must be finite; got 60 row"),
            ({"context": np.ones((59, 6))}, r"latents must have shape \(n, d\) with n = "),
            ({"n_neighbors": 60}, "n_neighbors=60 needs more than n_neighbors objects"),
            ({"nan_rows": 57}, "needs more objects with reconstruction errors than that; got 3"),
        ],
    )
    def test_bad_input(self, change, match):
        scores, context = self.data()
        if "drop" in change:
            del scores[change.pop("drop")]
        if "add" in change:
            scores[change.pop("add")] = scores["recon"]
        if "nan_rows" in change:
            scores["recon"][: change.pop("nan_rows")] = np.nan
        context = change.pop("context", context)
        with pytest.raises(ValueError, match=match):
            context_model_scores(scores, context, **({"n_neighbors": 5} | change))


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
