import numpy as np
import pytest

from astrounsup.latent import TSNE_MAX_OBJECTS, Reducer


def correlated(n=300, seed=0):
    rng = np.random.default_rng(seed)
    t = rng.normal(size=(n, 1))
    return np.hstack([3.0 * t, t, -0.5 * t]) + rng.normal(0.0, 0.05, (n, 3))


class TestPCA:
    def test_matches_numpy_svd(self):
        x = correlated()
        red = Reducer("pca", n_components=2, standardize=False).fit(x)
        centred = x - x.mean(0)
        s = np.linalg.svd(centred, compute_uv=False)
        np.testing.assert_allclose(red.explained_variance_ratio_, (s**2 / np.sum(s**2))[:2])
        emb = red.transform(x)
        # Same subspace as the SVD: the projection reconstructs as well as rank-2 SVD.
        np.testing.assert_allclose(np.sum(emb**2), np.sum(s[:2] ** 2), rtol=1e-10)

    def test_fit_on_a_subsample_places_everyone(self):
        x = correlated(1000)
        red = Reducer("pca", n_components=1, fit_size=200, random_state=1)
        emb = red.fit_transform(x)
        assert len(red.fit_indices_) == 200
        np.testing.assert_allclose(emb, red.transform(x), atol=1e-10)
        np.testing.assert_allclose(red.embedding_, emb)

    def test_too_many_components(self):
        with pytest.raises(ValueError, match=r"n_components=5 exceeds min\(n_objects"):
            Reducer("pca", n_components=5).fit(correlated())


class TestTSNE:
    def test_embeds_small_sets_but_cannot_transform(self):
        x = correlated(60)
        red = Reducer("tsne", n_components=2, random_state=0)
        emb = red.fit_transform(x)
        assert emb.shape == (60, 2)
        with pytest.raises(ValueError, match="t-SNE cannot transform new objects"):
            red.transform(x)

    def test_refuses_large_sets_and_subsampling(self):
        with pytest.raises(ValueError, match=f"at most {TSNE_MAX_OBJECTS} objects"):
            Reducer("tsne", fit_size=10).fit(correlated(60))


def test_umap_separates_blobs_and_places_new_objects():
    rng = np.random.default_rng(0)
    a = rng.normal(0.0, 1.0, (150, 8))
    b = rng.normal(12.0, 1.0, (150, 8))
    x = np.concatenate([a, b])
    red = Reducer("umap", n_components=2, random_state=0, fit_size=200)
    emb = red.fit_transform(x)
    gap = np.linalg.norm(emb[:150].mean(0) - emb[150:].mean(0))
    spread = max(emb[:150].std(0).max(), emb[150:].std(0).max())
    assert gap > 3 * spread


def test_cosine_umap_sees_directions_not_lengths():
    # Two directions, lengths spread over a factor 50: by angle there are two groups.
    rng = np.random.default_rng(1)
    length = rng.uniform(0.2, 10.0, (300, 1))
    direction = np.where(np.arange(300)[:, None] < 150, [[1.0, 0, 0, 0]], [[0, 1.0, 0, 0]])
    x = length * (direction + rng.normal(0, 0.05, (300, 4)))
    red = Reducer("umap", n_components=2, metric="cosine", standardize=False, random_state=0)
    emb = red.fit_transform(x)
    assert red.estimator_.metric == "cosine"
    gap = np.linalg.norm(emb[:150].mean(0) - emb[150:].mean(0))
    assert gap > 3 * max(emb[:150].std(0).max(), emb[150:].std(0).max())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"metric": "l1"}, r"metric must be one of \['euclidean', 'cosine'\]"),
        ({"metric": "cosine"}, "PCA is Euclidean; metric='cosine' needs 'umap' or 'tsne'"),
    ],
)
def test_bad_metric(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Reducer("pca", **kwargs).fit(correlated())


def test_unknown_method():
    with pytest.raises(ValueError, match=r"method must be one of \['pca', 'umap', 'tsne'\]"):
        Reducer("ica").fit(correlated())


def test_large_sets_fit_on_a_bounded_sample_and_place_the_rest_in_chunks(monkeypatch):
    import astrounsup.latent.reduce as reduce_module

    monkeypatch.setattr(reduce_module, "DEFAULT_FIT_SIZE", 300)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1000, 5)) * [5.0, 2.0, 1.0, 0.5, 0.1]
    placed = []
    real = Reducer._place

    def counting(self, chunk):
        placed.append(len(chunk))
        return real(self, chunk)

    monkeypatch.setattr(Reducer, "_place", counting)
    r = Reducer("pca", n_components=2, chunk_size=250, random_state=0)
    emb = r.fit_transform(x)
    assert len(r.fit_indices_) == 300
    assert placed == [250, 250, 200]  # the 700 others, 250 at a time
    np.testing.assert_allclose(emb, r.transform(x), rtol=1e-10, atol=1e-10)
    assert len(Reducer("pca", fit_size=1000).fit(x).fit_indices_) == 1000  # asked for all
