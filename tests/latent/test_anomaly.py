import numpy as np
import pytest

from astrounsup.latent import (
    SCORERS,
    AnomalyScorer,
    Reducer,
    context_model_scores,
    contextual_scores,
)


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

    @pytest.mark.parametrize("method", SCORERS)
    def test_fitted_scores_and_the_sklearn_convention(self, method):
        x = with_outliers()
        est = AnomalyScorer(method, n_neighbors=10, random_state=0).fit(x)
        np.testing.assert_array_equal(est.anomaly_scores_, est.fit_score(x))
        new = np.array([[0.0] * 5, [25.0] * 5])
        # score_samples is scikit-learn's: the lower, the more abnormal.
        np.testing.assert_array_equal(est.score_samples(new), -est.anomaly_score(new))
        assert est.score_samples(new)[1] < est.score_samples(new)[0]

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
    ERRORS = ("chi2", "chi2_max", "chi2_extended")

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
        assert sorted(out) == sorted(["context_lof", *(f"{k}_context" for k in self.ERRORS)])
        np.testing.assert_allclose(
            out["chi2_context"], contextual_scores(scores["chi2"], context, n_neighbors=5)
        )

    def test_cutouts_without_reconstruction_errors_are_left_out_of_the_lof(self):
        scores, context = self.data()
        scores["chi2"][[3, 17]] = np.nan  # every pixel masked: no error
        out = context_model_scores(scores, context, n_neighbors=5, n_components=0)
        ok = np.ones(60, dtype=bool)
        ok[[3, 17]] = False
        assert np.isnan(out["context_lof"][~ok]).all()
        assert np.isnan(out["chi2_context"][~ok]).all()
        errors = np.log(np.stack([scores[k] for k in self.ERRORS], 1))
        joint = AnomalyScorer("lof", n_neighbors=5).fit_score(np.hstack([context, errors])[ok])
        np.testing.assert_allclose(out["context_lof"][ok], joint)

    @pytest.mark.parametrize(
        ("change", "match"),
        [
            ({"n_components": -1}, "n_components must be an integer >= 0; got -1"),
            ({"drop": "chi2_max"}, r"missing \[.chi2_max.\], unknown \[\]"),
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
            scores[change.pop("add")] = scores["chi2"]
        if "nan_rows" in change:
            scores["chi2"][: change.pop("nan_rows")] = np.nan
        context = change.pop("context", context)
        with pytest.raises(ValueError, match=match):
            context_model_scores(scores, context, **({"n_neighbors": 5} | change))


class TestModelScoresToRank:
    ERRORS = ("chi2", "chi2_max", "chi2_extended", "elbo", "chi2_g", "line", "inpaint_chi2")

    def _errors(self, n=120, seed=0):
        rng = np.random.default_rng(seed)
        return {k: rng.lognormal(size=n) for k in self.ERRORS}

    def test_without_context_the_model_scores_are_ranked_as_they_are(self):
        from astrounsup.latent import model_scores_to_rank

        errors = self._errors()
        ranked, shown = model_scores_to_rank(errors)
        assert list(ranked) == ["chi2", "chi2_max", "chi2_extended", "elbo", "inpaint_chi2",
                                "line"]  # fmt: skip
        assert list(shown) == ["chi2_g"]
        for k, v in ranked.items():
            np.testing.assert_array_equal(v, errors[k])

    def test_with_context_look_alikes_judge_all_but_the_artefacts(self):
        from astrounsup.latent import (
            context_model_scores,
            contextual_scores,
            model_scores_to_rank,
        )

        errors = self._errors()
        context = np.random.default_rng(1).normal(size=(120, 6))
        ranked, shown = model_scores_to_rank(errors, context=context, n_neighbors=10,
                                             n_components=4, seed=3)  # fmt: skip
        np.testing.assert_array_equal(ranked["line"], errors["line"])
        ref = context_model_scores({k: errors[k] for k in ("chi2", "chi2_max", "chi2_extended",
                                                           "elbo")},
                                   context, n_neighbors=10, n_components=4, seed=3)  # fmt: skip
        for k, v in ref.items():
            np.testing.assert_array_equal(ranked[k], v)
        np.testing.assert_array_equal(
            ranked["inpaint_chi2_context"],
            contextual_scores(errors["inpaint_chi2"], context, n_neighbors=10),
        )
        assert set(ranked) == {"line", *ref, "inpaint_chi2_context"}
        assert "line" not in shown
        assert "chi2" in shown
