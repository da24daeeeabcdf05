import numpy as np
import pytest
from sklearn.metrics import accuracy_score, precision_score, recall_score

from astrounsup.latent import ClusterLabeler, binary_metrics, purity


def reference_fractions(clusters, y, labeled, positive=True):
    """Plain loop: the positive fraction of each cluster's labeled members."""
    out = {}
    for c in np.unique(clusters):
        members = [yy for cc, yy, ll in zip(clusters, y, labeled, strict=True) if cc == c and ll]
        out[c] = sum(m == positive for m in members) / len(members) if members else np.nan
    return out


class TestClusterLabeler:
    def test_fractions_and_table_match_a_plain_count(self):
        rng = np.random.default_rng(0)
        clusters = rng.integers(0, 6, 300)
        y = rng.random(300) < (clusters / 6.0)
        labeled = rng.random(300) < 0.3
        lab = ClusterLabeler(class_names={True: "lens", False: "non"}).fit(
            clusters, y, labeled=labeled
        )
        ref = reference_fractions(clusters, y, labeled)
        np.testing.assert_allclose(lab.fraction_, [ref[c] for c in lab.cluster_ids_])
        t = lab.table_
        assert t.colnames == [
            "cluster",
            "n",
            "n_labeled",
            "frac_non",
            "frac_lens",
            "positive_share",
            "called_positive",
        ]
        np.testing.assert_array_equal(t["n"], np.bincount(clusters))
        np.testing.assert_array_equal(t["n_labeled"], np.bincount(clusters[labeled]))
        np.testing.assert_allclose(t["frac_lens"] + t["frac_non"], 1.0)
        share = [np.sum(y & labeled & (clusters == c)) / np.sum(y & labeled) for c in range(6)]
        np.testing.assert_allclose(t["positive_share"], share)
        np.testing.assert_array_equal(t["called_positive"], lab.fraction_ > 0.5)

    def test_scores_and_predictions(self):
        clusters = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2])
        y = np.array([1, 1, 1, 0, 0, 0, 1, 0, 0]).astype(bool)
        labeled = np.array([1, 1, 1, 1, 1, 1, 1, 0, 0]).astype(bool)
        lab = ClusterLabeler(threshold=0.5).fit(clusters, y, labeled=labeled)
        score = lab.positive_score(np.array([0, 1, 2, 7]))
        np.testing.assert_allclose(score[:2], [0.75, 1 / 3])
        assert np.isnan(score[2])  # no labeled member
        assert np.isnan(score[3])  # a cluster never seen
        np.testing.assert_array_equal(lab.predict(np.array([0, 1, 2])), [True, False, False])

    def test_responsibilities_give_weighted_fractions(self):
        rng = np.random.default_rng(2)
        clusters = rng.integers(0, 4, 200)
        y = rng.random(200) < 0.4
        onehot = np.eye(4)[clusters]
        hard = ClusterLabeler().fit(clusters, y)
        soft = ClusterLabeler().fit(onehot, y)
        np.testing.assert_allclose(soft.fraction_, hard.fraction_)
        np.testing.assert_allclose(soft.positive_score(onehot), hard.positive_score(clusters))
        # A 50/50 member scores the mean of its two clusters' fractions.
        mixed = np.array([[0.5, 0.5, 0.0, 0.0]])
        np.testing.assert_allclose(soft.positive_score(mixed), hard.fraction_[:2].mean())

    @pytest.mark.parametrize(
        ("kwargs", "fit", "match"),
        [
            ({"positive": "lens"}, {}, r"positive='lens' is not among the labels \[False, True\]"),
            ({"threshold": 1.5}, {}, r"threshold must be a finite number in \[0.0, 1.0\]"),
            ({}, {"labeled": np.zeros(4, bool)}, "no labeled objects"),
            ({}, {"labeled": np.ones(3, bool)}, "one entry per object"),
        ],
    )
    def test_bad_input(self, kwargs, fit, match):
        with pytest.raises(ValueError, match=match):
            ClusterLabeler(**kwargs).fit(
                np.array([0, 0, 1, 1]), np.array([1, 0, 1, 0], bool), **fit
            )

    def test_float_cluster_ids_refused(self):
        with pytest.raises(ValueError, match="integer cluster ids"):
            ClusterLabeler().fit(np.array([0.0, 1.0]), np.array([True, False]))


class TestMetrics:
    def test_binary_metrics_match_sklearn(self):
        rng = np.random.default_rng(4)
        truth = rng.random(500) < 0.4
        pred = np.where(rng.random(500) < 0.8, truth, ~truth)
        m = binary_metrics(pred, truth)
        assert m["accuracy"] == pytest.approx(accuracy_score(truth, pred))
        assert m["precision"] == pytest.approx(precision_score(truth, pred))
        assert m["recall"] == m["completeness"] == pytest.approx(recall_score(truth, pred))
        assert (m["n"], m["n_true"], m["n_predicted"]) == (500, truth.sum(), pred.sum())

    def test_nothing_predicted_gives_nan_precision(self):
        m = binary_metrics([False, False], [True, False])
        assert np.isnan(m["precision"])
        assert m["recall"] == 0.0

    def test_purity_by_hand(self):
        clusters = [0, 0, 0, 1, 1, 2]
        labels = ["a", "a", "b", "b", "b", "c"]
        assert purity(clusters, labels) == pytest.approx(5 / 6)

    def test_purity_refuses_mismatch(self):
        with pytest.raises(ValueError, match="equal length"):
            purity([0, 1], ["a"])
