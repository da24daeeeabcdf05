import numpy as np
import pytest

from astrounsup.latent import C_GRID, LabelScorer, label_clusters


def two_gaussians(n, prevalence, *, seed=0, shift=2.0, d=3):
    """Equal-covariance Gaussians: the true posterior is a logistic in x (a reference)."""
    rng = np.random.default_rng(seed)
    y = rng.random(n) < prevalence
    mu = np.zeros(d)
    mu[0] = shift
    X = rng.normal(0.0, 1.0, (n, d)) + y[:, None] * mu
    log_odds = shift * X[:, 0] - shift**2 / 2 + np.log(prevalence / (1 - prevalence))
    return X, y, 1 / (1 + np.exp(-log_odds))


class TestLabeledRegime:
    def test_probabilities_match_the_true_posterior(self):
        X, y, truth = two_gaussians(4000, 0.3)
        labeled = np.random.default_rng(1).random(4000) < 0.1
        sc = LabelScorer().fit(X, y, labeled=labeled)
        assert sc.mode_ == "labeled"
        assert np.abs(sc.probability_ - truth)[~labeled].mean() < 0.03
        # Calibrated: in each bin of probability, the share of positives is the probability.
        bins = np.digitize(sc.probability_[~labeled], [0.2, 0.4, 0.6, 0.8])
        for b in range(5):
            sel = bins == b
            mean_p = sc.probability_[~labeled][sel].mean()
            assert abs(y[~labeled][sel].mean() - mean_p) < 0.06

    def test_scores_rank_without_ties_and_labeled_rows_are_out_of_fold(self):
        X, y, _ = two_gaussians(500, 0.5, seed=2)
        labeled = np.zeros(500, bool)
        labeled[:100] = True
        sc = LabelScorer(folds=4).fit(X, y, labeled=labeled)
        assert len(np.unique(sc.scores_)) == 500
        # A labeled row's score comes from a model that never saw it: refitting without
        # it reproduces the same fold model only if it was left out, so its score differs
        # from the full model's in-sample score.
        in_sample = sc.final_.decision_function((X - sc.mean_) / sc.std_)
        assert not np.allclose(sc.scores_[:100], in_sample[:100])
        np.testing.assert_allclose(sc.decision_function(X), in_sample)

    def test_clusters_enter_as_one_hot_offsets(self):
        X, y, _ = two_gaussians(600, 0.5, seed=3)
        clusters = (X[:, 0] > 1.0).astype(int) + 5
        sc = LabelScorer().fit(X, y, labeled=np.ones(600, bool), clusters=clusters)
        assert sc.final_.coef_.shape == (1, 3 + 2)
        np.testing.assert_array_equal(sc.cluster_ids_, [5, 6])
        p = sc.predict_proba(X[:5], clusters=clusters[:5])
        assert p.shape == (5,)
        with pytest.raises(ValueError, match="clusters must be given to decision_function"):
            sc.predict_proba(X[:5])

    def test_text_labels(self):
        X, y, _ = two_gaussians(300, 0.5, seed=4)
        text = np.where(y, "lens", "galaxy")
        a = LabelScorer(positive="lens").fit(X, text)
        b = LabelScorer().fit(X, y)
        np.testing.assert_allclose(a.probability_, b.probability_)


class TestAutoRegularisation:
    def test_few_labels_among_many_noise_features_regularise_more(self):
        X, y, _ = two_gaussians(2000, 0.5, seed=5, d=3)
        noisy = np.hstack([X, np.random.default_rng(6).normal(size=(2000, 60))])
        few = np.random.default_rng(7).random(2000) < 0.05
        weak = LabelScorer().fit(noisy, y, labeled=few)
        strong = LabelScorer().fit(X, y)  # every label, only informative features
        assert weak.C_ in C_GRID
        assert strong.C_ in C_GRID
        assert weak.C_ < strong.C_

    def test_the_chosen_regularisation_is_the_one_fitted(self):
        X, y, _ = two_gaussians(400, 0.5, seed=8)
        auto = LabelScorer().fit(X, y)
        fixed = LabelScorer(C=auto.C_).fit(X, y)
        np.testing.assert_allclose(auto.scores_, fixed.scores_)
        assert LabelScorer(C=0.5).fit(X, y).C_ == 0.5


def not_known_posterior(truth, share):
    """The chance of being positive for an object not in the list, when a share ``share``
    of the positives is listed at random and ``truth`` is the posterior (a reference)."""
    return (1 - share) * truth / (1 - share * truth)


class TestPositiveUnlabeledRegime:
    def test_separable_classes_recover_the_labeled_share_and_the_posterior(self):
        X, y, truth = two_gaussians(6000, 0.05, seed=5, shift=7.0)
        known = y & (np.random.default_rng(6).random(6000) < 0.3)  # 30% of positives known
        share = known.sum() / y.sum()
        sc = LabelScorer().fit(X, known, labeled=known)
        assert sc.mode_ == "positive-unlabeled"
        assert sc.label_frequency_ == pytest.approx(share, abs=0.05)
        reference = not_known_posterior(truth, share)
        assert np.abs(sc.probability_ - reference)[~known].mean() < 0.02

    @pytest.mark.parametrize(("seed", "shift"), [(5, 3.0), (11, 2.0)])
    def test_overlapping_classes_keep_calibrated_probabilities_below_one(self, seed, shift):
        X, y, truth = two_gaussians(6000, 0.05, seed=seed, shift=shift)
        known = y & (np.random.default_rng(seed + 1).random(6000) < 0.3)
        share = known.sum() / y.sum()
        sc = LabelScorer().fit(X, known, labeled=known)
        # The share of positives that are known is fitted, not underestimated by the mean
        # score of the known ones (which made a third of the candidates exactly 1).
        assert sc.label_frequency_ == pytest.approx(share, abs=0.06)
        other = ~known
        reference = not_known_posterior(truth, share)
        assert np.abs(sc.probability_ - reference)[other].mean() < 0.012
        # Expected positives among the others: near the truth.
        assert sc.probability_[other].sum() == pytest.approx(y[other].sum(), rel=0.2)
        # Resolution: below 1, and ordered exactly as the ranking score.
        assert sc.probability_.max() < 1.0
        order = np.argsort(-sc.scores_[other], kind="stable")
        assert np.all(np.diff(sc.probability_[other][order]) < 0)

    def test_overlapping_classes_still_rank_the_candidates(self):
        X, y, _ = two_gaussians(6000, 0.05, seed=5, shift=3.0)
        known = y & (np.random.default_rng(6).random(6000) < 0.3)
        sc = LabelScorer().fit(X, known, labeled=known)
        top = np.argsort(-sc.scores_[~known])[:100]
        reference = np.argsort(-X[~known, 0])[:100]  # the Bayes-optimal order
        assert y[~known][top].mean() >= y[~known][reference].mean() - 0.05

    def test_known_positives_are_rated_by_the_folds_that_did_not_see_them(self):
        X, y, _ = two_gaussians(3000, 0.05, seed=3, shift=3.0)
        known = y & (np.random.default_rng(4).random(3000) < 0.4)
        sc = LabelScorer().fit(X, known, labeled=known)
        a, b, c = sc.pu_

        def positive(t):
            return 1 / (1 + np.exp(-(a * t + b)))

        def not_known(t):
            return (1 - c) * positive(t) / (1 - c * positive(t))

        np.testing.assert_allclose(sc.probability_[known], positive(sc.scores_[known]))
        np.testing.assert_allclose(sc.probability_[~known], not_known(sc.scores_[~known]))
        # New objects are not in the list: the probability given that.
        np.testing.assert_allclose(sc.predict_proba(X[:5]), not_known(sc.decision_function(X[:5])))


class TestBadInput:
    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"C": 0.0}, "C must be > 0 or 'auto'; got 0.0"),
            ({"C": "big"}, "got 'big'"),
            ({"folds": 1}, "folds must be an integer >= 2"),
        ],
    )
    def test_bad_parameters(self, kwargs, match):
        X, y, _ = two_gaussians(100, 0.5)
        with pytest.raises(ValueError, match=match):
            LabelScorer(**kwargs).fit(X, y)

    def test_too_few_labels_are_named(self):
        X, y, _ = two_gaussians(100, 0.5)
        labeled = np.zeros(100, bool)
        labeled[np.nonzero(y)[0][:1]] = True
        labeled[np.nonzero(~y)[0][:5]] = True
        with pytest.raises(ValueError, match=r"at least 2 labeled positives .* got 1 positive"):
            LabelScorer().fit(X, y, labeled=labeled)

    def test_not_finite_features_and_shapes(self):
        X, y, _ = two_gaussians(50, 0.5)
        X[3, 1] = np.nan
        with pytest.raises(ValueError, match="X must be a finite 2-D array"):
            LabelScorer().fit(X, y)
        with pytest.raises(ValueError, match="one entry per row of X"):
            LabelScorer().fit(np.zeros((50, 2)), y[:40])


class TestLabelClusters:
    def test_only_known_positives(self):
        X, y, _ = two_gaussians(3000, 0.05, seed=7, shift=3.0)
        clusters = np.digitize(X[:, 0], [-1, 0, 1, 2, 3])
        known = y & (np.random.default_rng(8).random(3000) < 0.4)
        columns, summary, metrics = label_clusters(
            clusters, known, features=X, labeled=known, name="lens"
        )
        assert metrics["regime"] == "positive-unlabeled"
        assert "called_positive" not in summary.colnames
        assert {"frac_known_lens", "frac_other"} <= set(summary.colnames)
        # The cluster fraction is the share of known positives among the cluster's members.
        for c in np.unique(clusters):
            share = known[clusters == c].mean()
            np.testing.assert_allclose(columns["lens_cluster_fraction"][clusters == c], share)
        assert sorted(columns["lens_rank"]) == list(range(1, 3001))
        with pytest.raises(ValueError, match=r"only positives are labeled: .* needs features="):
            label_clusters(clusters, known, labeled=known)

    def test_labeled_regime_reports_the_per_object_score(self):
        X, y, _ = two_gaussians(1000, 0.5, seed=9)
        clusters = np.digitize(X[:, 0], [0, 1, 2])
        labeled = np.random.default_rng(10).random(1000) < 0.2
        columns, _, metrics = label_clusters(clusters, y, features=X, labeled=labeled)
        assert metrics["regime"] == "labeled"
        assert 0.85 < metrics["score_auroc"] <= 1.0
        assert metrics["n"] == int((~labeled).sum())
        np.testing.assert_array_equal(columns["labeled"], labeled)
