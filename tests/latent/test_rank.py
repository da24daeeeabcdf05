import numpy as np
import pytest
from scipy.stats import rankdata

from astrounsup.latent import combine_ranks, descending_rank, rank_scores


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

    def test_descending_rank_puts_nan_last_and_keeps_row_order_for_ties(self):
        s = np.array([0.5, np.nan, 0.9, 0.5, -np.inf, np.inf, np.nan])
        rank = descending_rank(s)
        np.testing.assert_array_equal(rank, [3, 6, 2, 4, 5, 1, 7])
        order = np.argsort(rank)
        reference = sorted(
            range(len(s)), key=lambda i: (np.isnan(s[i]), -np.nan_to_num(s[i], nan=0), i)
        )
        np.testing.assert_array_equal(order, reference)
        with pytest.raises(ValueError, match=r"scores must be 1-D; got shape \(2, 2\)"):
            descending_rank(np.zeros((2, 2)))


class TestTailScaled:
    def test_against_numpy(self):
        from astrounsup.latent import tail_scaled

        s = np.random.default_rng(1).lognormal(size=500)
        s[7] = np.nan
        ok = np.isfinite(s)
        med, q = np.median(s[ok]), np.quantile(s[ok], 0.95)
        out = tail_scaled(s, quantile=0.95)
        np.testing.assert_allclose(out[ok], (s[ok] - med) / (q - med))
        assert np.isnan(out[7])

    def test_a_clean_detector_outranks_a_heavy_tailed_scorer(self):
        from astrounsup.latent import rank_anomalies

        rng = np.random.default_rng(3)
        heavy = rng.lognormal(0.0, 1.0, 1000)  # ordinary objects with a long tail
        clean = rng.normal(size=1000)
        clean[[10, 20]] = 40.0  # two real outliers of a noise-limited detector
        heavy[[10, 20]] = 0.0
        _, by_tail = rank_anomalies({"heavy": heavy, "clean": clean})
        _, by_max = rank_anomalies({"heavy": heavy, "clean": clean}, how="max")
        assert sorted(by_tail[[10, 20]]) == [1, 2]  # tail is the default
        assert max(by_max[[10, 20]]) > 2  # ranks: the heavy scorer's top ties with them

    @pytest.mark.parametrize(
        ("scores", "expected"),
        [([0.0] * 200 + [30.0], 1.0), ([2.0] * 10, 0.0)],
    )
    def test_a_degenerate_tail(self, scores, expected):
        from astrounsup.latent import tail_scaled

        assert tail_scaled(scores)[-1] == expected

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [({"quantile": 1.0}, r"quantile must be in \(0.5, 1\); got 1.0"),
         ({"scores": np.zeros((2, 2))}, r"scores must be 1-D")],
    )  # fmt: skip
    def test_bad_inputs(self, kwargs, match):
        from astrounsup.latent import tail_scaled

        options = {"scores": [1.0, 2.0]} | kwargs
        with pytest.raises(ValueError, match=match):
            tail_scaled(**options)


class TestRankWithGrades:
    def test_graded_objects_move_and_the_others_keep_their_order(self):
        from astrounsup.latent import rank_anomalies, rank_with_grades

        rng = np.random.default_rng(6)
        scores = {"a": rng.normal(size=200), "b": rng.lognormal(size=200)}
        grades = np.full(200, "", dtype="<U7")
        grades[[3, 4]] = "not"
        grades[[10, 11, 12]] = "anomaly"
        flagged = np.zeros(200, bool)
        flagged[7] = True
        combined, rank = rank_with_grades(scores, grades, flagged=flagged)
        ref_combined, ref = rank_anomalies(scores, flagged=flagged)
        np.testing.assert_array_equal(combined, ref_combined)
        assert sorted(rank[[10, 11, 12]]) == [1, 2, 3]
        assert sorted(rank[[3, 4]]) == [198, 199]
        assert rank[7] == 200
        others = np.setdiff1d(np.arange(200), [3, 4, 7, 10, 11, 12])
        np.testing.assert_array_equal(np.argsort(rank[others]), np.argsort(ref[others]))
        np.testing.assert_array_equal(np.sort(rank), np.arange(1, 201))

    @pytest.mark.parametrize(
        ("grades", "kwargs", "match"),
        [
            (["lens", "", ""], {}, r"unknown grades \['lens'\]"),
            (["", ""], {}, r"grades must have shape \(3,\)"),
            (["", "", ""], {"how": "sum"}, "how must be one of"),
        ],
    )
    def test_bad_inputs(self, grades, kwargs, match):
        from astrounsup.latent import rank_with_grades

        with pytest.raises(ValueError, match=match):
            rank_with_grades({"a": [1.0, 2.0, 3.0]}, grades, **kwargs)


class TestRankAnomalies:
    def test_against_ranking_the_unflagged_alone(self):
        from astrounsup.latent import rank_anomalies

        rng = np.random.default_rng(5)
        scores = {"a": rng.normal(size=50), "b": rng.normal(size=50)}
        flagged = rng.random(50) < 0.2
        combined, rank = rank_anomalies(scores, how="max", flagged=flagged)
        good = ~flagged
        ref = combine_ranks({k: v[good] for k, v in scores.items()}, how="max")
        np.testing.assert_array_equal(combined[good], ref)
        assert np.isnan(combined[flagged]).all()
        np.testing.assert_array_equal(rank[good], descending_rank(ref))
        # Flagged objects follow in row order.
        assert rank[flagged].tolist() == list(range(good.sum() + 1, 51))

    @pytest.mark.parametrize(
        ("scores", "kwargs", "match"),
        [
            ({}, {}, "scores is empty"),
            ({"a": [1.0, 2.0], "b": [1.0]}, {}, "every scorer needs 2 scores"),
            ({"a": [1.0]}, {"flagged": [True]}, "every one of the 1 objects is flagged"),
            ({"a": [1.0]}, {"flagged": [True, False]}, r"flagged must have shape \(1,\)"),
            ({"a": [1.0]}, {"how": "median"}, "how"),
        ],
    )
    def test_bad_inputs(self, scores, kwargs, match):
        from astrounsup.latent import rank_anomalies

        with pytest.raises(ValueError, match=match):
            rank_anomalies(scores, **kwargs)


class TestFlaggedLast:
    def test_against_sorting(self):
        from astrounsup.latent import flagged_last

        rng = np.random.default_rng(2)
        rank = rng.permutation(40) + 1
        flagged = rng.random(40) < 0.3
        new = flagged_last(rank, flagged)
        ref = sorted(range(40), key=lambda i: (flagged[i], rank[i]))
        assert [int(i) for i in np.argsort(new)] == ref
