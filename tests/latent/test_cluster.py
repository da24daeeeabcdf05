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
