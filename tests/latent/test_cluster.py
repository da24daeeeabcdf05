import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from astrounsup.latent import METHODS, LatentClusterer, choose_k


def blobs(n_per=60, k=3, dim=4, seed=0, spread=0.5):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 8.0, (k, dim))
    x = np.concatenate([c + rng.normal(0.0, spread, (n_per, dim)) for c in centres])
    return x, np.repeat(np.arange(k), n_per)


class TestLatentClusterer:
    @pytest.mark.parametrize("method", METHODS)
    def test_recovers_separated_blobs(self, method):
        x, truth = blobs()
        est = LatentClusterer(method, n_clusters=3, min_cluster_size=10, random_state=0).fit(x)
        assert adjusted_rand_score(truth, est.labels_) == pytest.approx(1.0)
        assert est.n_clusters_ == 3
        # New points near the centres get their blob's cluster.
        x_new, truth_new = blobs(n_per=5, seed=0)
        assert adjusted_rand_score(truth_new, est.predict(x_new)) == pytest.approx(1.0)

    @pytest.mark.parametrize("method", ["kmeans", "gmm", "bayes-gmm"])
    def test_predict_proba_rows_sum_to_one_and_agree_with_predict(self, method):
        x, _ = blobs()
        est = LatentClusterer(method, n_clusters=3, random_state=0).fit(x)
        p = est.predict_proba(x)
        np.testing.assert_allclose(p.sum(1), 1.0)
        np.testing.assert_array_equal(p.argmax(1), est.predict(x))
        np.testing.assert_array_equal(est.labels_, est.predict(x))

    def test_bayesian_mixture_switches_off_unneeded_components(self):
        x, _ = blobs(n_per=100)
        est = LatentClusterer("bayes-gmm", n_clusters=10, random_state=0).fit(x)
        assert est.n_clusters_ <= 4
        assert len(np.unique(est.labels_)) == 3

    def test_hdbscan_has_no_proba_and_labels_noise(self):
        x, _ = blobs()
        x = np.concatenate([x, [[100.0, -100.0, 100.0, -100.0]]])
        est = LatentClusterer("hdbscan", min_cluster_size=10).fit(x)
        assert est.labels_[-1] == -1
        assert not hasattr(est, "predict_proba")

    def test_standardisation_stops_one_dimension_dominating(self):
        x, truth = blobs(dim=2)
        noise = np.random.default_rng(1).normal(0.0, 1000.0, (len(x), 1))
        x = np.hstack([x, noise])
        scaled = LatentClusterer("kmeans", n_clusters=3, random_state=0).fit(x)
        raw = LatentClusterer("kmeans", n_clusters=3, standardize=False, random_state=0).fit(x)
        assert adjusted_rand_score(truth, raw.labels_) < 0.2
        assert adjusted_rand_score(truth, scaled.labels_) > adjusted_rand_score(truth, raw.labels_)

    def test_same_seed_same_clusters(self):
        x, _ = blobs(k=5, spread=3.0)
        a = LatentClusterer("kmeans", n_clusters=5, random_state=3).fit(x).labels_
        b = LatentClusterer("kmeans", n_clusters=5, random_state=3).fit(x).labels_
        np.testing.assert_array_equal(a, b)

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"method": "dbscan"}, r"method must be one of .*'kmeans'.*got 'dbscan'"),
            ({"n_clusters": 0}, r"n_clusters must be an integer >= 1; got 0"),
            ({"covariance_type": "round"}, r"covariance_type must be one of"),
            ({"n_clusters": 500}, r"n_clusters=500 needs at least as many objects; got 180"),
        ],
    )
    def test_bad_settings(self, kwargs, match):
        x, _ = blobs()
        with pytest.raises(ValueError, match=match):
            LatentClusterer(**kwargs).fit(x)

    def test_nan_input_refused(self):
        x, _ = blobs()
        x[3, 1] = np.nan
        with pytest.raises(ValueError, match="NaN"):
            LatentClusterer(n_clusters=3).fit(x)


class TestChooseK:
    def test_finds_the_number_of_blobs(self):
        x, _ = blobs(k=4, n_per=50)
        table = choose_k(x, range(2, 9), random_state=0)
        assert table.meta["k_silhouette"] == 4
        assert table.meta["k_elbow"] == 4
        assert list(table["k"]) == list(range(2, 9))
        assert np.all(np.diff(table["inertia"]) < 0)

    @pytest.mark.parametrize(
        ("k_values", "match"), [([1, 2], r"k_values must lie in \[2, "), ([], "k_values")]
    )
    def test_bad_k(self, k_values, match):
        x, _ = blobs()
        with pytest.raises(ValueError, match=match):
            choose_k(x, k_values)


class TestFaissAndSampledKMeans:
    @staticmethod
    def blobs(n=3000, seed=0):
        rng = np.random.default_rng(seed)
        centres = rng.normal(0.0, 8.0, (6, 5))
        which = rng.integers(0, 6, n)
        return (centres[which] + rng.normal(size=(n, 5))).astype(np.float32), which

    def test_faiss_gives_scikit_learns_partition(self):
        pytest.importorskip("faiss", reason="faiss (the scale extra) is not installed")
        from sklearn.metrics import adjusted_rand_score

        x, truth = self.blobs()
        ref = LatentClusterer("kmeans", n_clusters=6, random_state=0).fit(x)
        fast = LatentClusterer("kmeans", n_clusters=6, backend="faiss", random_state=0).fit(x)
        assert adjusted_rand_score(ref.labels_, fast.labels_) == 1.0
        assert adjusted_rand_score(truth, fast.labels_) == 1.0
        np.testing.assert_array_equal(fast.predict(x[:100]), fast.labels_[:100])
        proba = fast.predict_proba(x[:10])
        np.testing.assert_array_equal(proba.argmax(axis=1), fast.labels_[:10])
        import pickle

        again = pickle.loads(pickle.dumps(fast))
        np.testing.assert_array_equal(again.predict(x), fast.labels_)

    @pytest.mark.parametrize("backend", ["sklearn", "faiss"])
    def test_fit_on_a_sample_assigns_every_object(self, backend, tmp_path):
        if backend == "faiss":
            pytest.importorskip("faiss", reason="faiss (the scale extra) is not installed")
        import h5py
        from sklearn.metrics import adjusted_rand_score

        x, truth = self.blobs(5000, 1)
        est = LatentClusterer("kmeans", n_clusters=6, backend=backend, kmeans_fit_size=600,
                              chunk_size=700, random_state=0).fit(x)  # fmt: skip
        assert est.labels_.shape == (5000,)
        assert adjusted_rand_score(truth, est.labels_) == 1.0
        np.testing.assert_array_equal(est.predict(x), est.labels_)
        with h5py.File(tmp_path / "z.h5", "w") as f:  # streamed from a file, chunk by chunk
            f["latents"] = x
        with h5py.File(tmp_path / "z.h5", "r") as f:
            streamed = LatentClusterer("kmeans", n_clusters=6, backend=backend,
                                       kmeans_fit_size=600, chunk_size=700,
                                       random_state=0).fit(f["latents"])  # fmt: skip
        np.testing.assert_array_equal(streamed.labels_, est.labels_)

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"method": "gmm", "backend": "faiss"}, r"backend='faiss' runs k-means; it needs"),
            ({"backend": "torch"}, r"backend must be one of \['sklearn', 'faiss'\]"),
            ({"method": "hdbscan", "kmeans_fit_size": 10}, r"kmeans_fit_size is for k-means"),
            ({"kmeans_fit_size": 0}, r"kmeans_fit_size must be an integer >= 1"),
        ],
    )  # fmt: skip
    def test_bad_settings(self, kwargs, match):
        x, _ = self.blobs(100)
        with pytest.raises(ValueError, match=match):
            LatentClusterer(**{"n_clusters": 3, **kwargs}).fit(x)

    def test_a_non_finite_row_is_named(self):
        x, _ = self.blobs(100)
        x[57, 2] = np.nan
        with pytest.raises(ValueError, match=r"X has non-finite values \(first at row 57\)"):
            LatentClusterer(n_clusters=3, kmeans_fit_size=100, chunk_size=30).fit(x)


def test_the_faiss_backend_without_faiss_says_how_to_install_it(without_faiss):
    x = np.random.default_rng(0).normal(size=(50, 3))
    with pytest.raises(ValueError, match=r"backend 'faiss' needs the faiss package.*\[scale\]"):
        LatentClusterer(n_clusters=2, backend="faiss").fit(x)
