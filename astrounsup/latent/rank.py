"""Ranks of scores: percentiles, their combination across scorers, and a rank order."""

from __future__ import annotations

import numpy as np

from astrounsup._estimators import check_choice

__all__ = [
    "COMBINE_RULES",
    "combine_ranks",
    "descending_rank",
    "flagged_last",
    "rank_anomalies",
    "rank_scores",
    "rank_with_grades",
    "tail_scaled",
]

#: How :func:`rank_anomalies` combines scorers.
COMBINE_RULES = ("tail", "max", "mean")


def rank_scores(scores):
    """Percentile rank of each score in [0, 1] (1: the most anomalous); ties share the
    mean rank, NaN stays NaN.

    Parameters
    ----------
    scores : array_like of shape (n,)

    Returns
    -------
    numpy.ndarray of shape (n,)

    Examples
    --------
    >>> rank_scores([0.1, 5.0, 2.0, float("nan")]).tolist()
    [0.0, 1.0, 0.5, nan]
    """
    from scipy.stats import rankdata

    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1:
        msg = f"scores must be 1-D; got shape {s.shape}"
        raise ValueError(msg)
    out = np.full(s.shape, np.nan)
    ok = np.isfinite(s)
    if ok.sum() == 1:
        out[ok] = 1.0
    elif ok.any():
        out[ok] = (rankdata(s[ok]) - 1.0) / (ok.sum() - 1.0)
    return out


def tail_scaled(scores, *, quantile=0.99):
    """Scores on a common scale: 0 at their median, 1 at their ``quantile``.

    A scorer whose top per cent holds ordinary objects (noise, bright stars) keeps its
    anomalies near 1; a detector whose anomalies stand far above everything else puts them
    at tens. Taking the largest over scorers then lets each add its real outliers, not its
    top per cent.

    Parameters
    ----------
    scores : array_like of shape (n,)
        Higher: more anomalous; NaN stays NaN.
    quantile : float, optional
        In (0.5, 1).

    Returns
    -------
    numpy.ndarray of shape (n,)
        ``(score - median) / (q - median)`` with ``q`` the ``quantile``; where ``q``
        equals the median, the largest score stands in for it (and 1 where that too
        equals it).

    Examples
    --------
    >>> tail_scaled(np.arange(101.0))[[50, 99, 100]].tolist()
    [0.0, 1.0, 1.0204081632653061]
    >>> tail_scaled([0.0] * 200 + [30.0])[-2:].tolist()  # top per cent at the median
    [0.0, 1.0]
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1:
        msg = f"scores must be 1-D; got shape {s.shape}"
        raise ValueError(msg)
    if not 0.5 < quantile < 1.0:
        msg = f"quantile must be in (0.5, 1); got {quantile!r}"
        raise ValueError(msg)
    ok = np.isfinite(s)
    if not ok.any():
        return np.full(s.shape, np.nan)
    median = float(np.median(s[ok]))
    scale = float(np.quantile(s[ok], quantile)) - median
    if scale <= 0:
        scale = float(s[ok].max()) - median
    scale = scale if scale > 0 else 1.0
    return np.where(ok, (s - median) / scale, np.nan)


def combine_ranks(scores, *, how="mean"):
    """Combine several scorers through their percentile ranks.

    Parameters
    ----------
    scores : dict of str to array_like of shape (n,)
    how : {"mean", "max"}
        ``mean``: an object must look odd to most scorers; ``max``: to any one of them.

    Returns
    -------
    numpy.ndarray of shape (n,)
        Combined score in [0, 1]; NaN ranks are left out of the mean or max (NaN only if
        every scorer is NaN).

    Examples
    --------
    >>> combine_ranks({"a": [1.0, 2.0, 3.0], "b": [3.0, 2.0, 1.0]}, how="max").tolist()
    [1.0, 0.5, 1.0]
    """
    check_choice("combine_ranks", "how", how, ("mean", "max"))
    if not scores:
        msg = "combine_ranks: scores is empty; give at least one scorer"
        raise ValueError(msg)
    ranks = np.stack([rank_scores(v) for v in scores.values()])
    if np.isnan(ranks).all(0).any():
        out = np.full(ranks.shape[1], np.nan)
        ok = ~np.isnan(ranks).all(0)
        out[ok] = (np.nanmean if how == "mean" else np.nanmax)(ranks[:, ok], axis=0)
        return out
    return (np.nanmean if how == "mean" else np.nanmax)(ranks, axis=0)


def descending_rank(scores):
    """Rank of each object when sorted by ``scores``, highest first: 1, 2, ..., n.

    NaN scores rank last; ties, and NaNs among themselves, keep the order of the rows.

    Parameters
    ----------
    scores : array_like of shape (n,)

    Returns
    -------
    numpy.ndarray of shape (n,), int64
        ``numpy.argsort(rank)`` lists the objects from the highest score down.

    Examples
    --------
    >>> descending_rank([0.2, float("nan"), 0.9, 0.2]).tolist()
    [2, 4, 1, 3]
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1:
        msg = f"scores must be 1-D; got shape {s.shape}"
        raise ValueError(msg)
    missing = np.isnan(s)
    order = np.lexsort((np.arange(len(s)), np.where(missing, 0.0, -s), missing))
    rank = np.empty(len(s), dtype=np.int64)
    rank[order] = np.arange(1, len(s) + 1)
    return rank


def rank_anomalies(scores, *, how="tail", flagged=None):
    """Combine anomaly scores and rank every object, the ``flagged`` ones (e.g. cutouts
    with too many bad pixels) after all others and unscored.

    Parameters
    ----------
    scores : dict of str to array_like of shape (n,)
        Each scorer's scores (higher: more anomalous); the entries of flagged objects are
        not used.
    how : {"tail", "max", "mean"}, optional
        ``tail``: the largest of the scores each put on the scale of its own top per cent
        (:func:`tail_scaled`), so an object far beyond any one scorer's usual top ranks
        high and a scorer's ordinary top per cent does not; ``max``: the largest
        percentile rank, which lets every scorer put its top objects first; ``mean``: the
        mean percentile rank, odd to most scorers (:func:`combine_ranks`).
    flagged : array_like of bool, shape (n,), optional
        Objects left unscored.

    Returns
    -------
    combined : numpy.ndarray of shape (n,)
        The combination, computed over the objects not flagged (percentiles in [0, 1] for
        ``max`` and ``mean``; 1 at a scorer's 99th percentile for ``tail``); NaN for
        flagged ones.
    rank : numpy.ndarray of shape (n,), int64
        1 for the most anomalous; the flagged objects follow, in the order of the rows.

    Raises
    ------
    ValueError
        No scorer, scorers of other lengths, or every object flagged.

    Examples
    --------
    >>> combined, rank = rank_anomalies({"a": [0.1, 0.9, 0.5], "b": [3.0, 1.0, 2.0]},
    ...                                 how="max", flagged=[False, False, True])
    >>> combined.tolist(), rank.tolist()
    ([1.0, 1.0, nan], [1, 2, 3])
    """
    check_choice("rank_anomalies", "how", how, COMBINE_RULES)
    if not scores:
        msg = "rank_anomalies: scores is empty; give at least one scorer"
        raise ValueError(msg)
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in scores.items()}
    n = len(next(iter(arrays.values())))
    bad = {k: v.shape for k, v in arrays.items() if v.shape != (n,)}
    if bad:
        msg = f"rank_anomalies: every scorer needs {n} scores (one per object); got {bad}"
        raise ValueError(msg)
    flagged = np.zeros(n, bool) if flagged is None else np.asarray(flagged, dtype=bool)
    if flagged.shape != (n,):
        msg = f"rank_anomalies: flagged must have shape ({n},); got {flagged.shape}"
        raise ValueError(msg)
    good = ~flagged
    n_good = int(good.sum())
    if n_good == 0:
        msg = f"rank_anomalies: every one of the {n} objects is flagged"
        raise ValueError(msg)
    combined = np.full(n, np.nan)
    if how == "tail":
        scaled = np.stack([tail_scaled(v[good]) for v in arrays.values()])
        every_nan = np.isnan(scaled).all(0)
        combined[good] = np.where(every_nan, np.nan,
                                  np.nanmax(np.where(every_nan, 0.0, scaled), 0))  # fmt: skip
    else:
        combined[good] = combine_ranks({k: v[good] for k, v in arrays.items()}, how=how)
    rank = np.empty(n, dtype=np.int64)
    rank[good] = descending_rank(combined[good])
    rank[flagged] = n_good + 1 + np.arange(n - n_good)
    return combined, rank


def rank_with_grades(scores, grades, *, how="tail", flagged=None):
    """Rank anomalies again after a person graded some: the graded anomalies first, the
    ungraded in the order of the combined score, the graded ``not`` after them, then the
    ``flagged``.

    Parameters
    ----------
    scores : dict of str to array_like of shape (n,)
        Each scorer's scores (higher: more anomalous).
    grades : array_like of str, shape (n,)
        ``"anomaly"``, ``"not"`` or ``""`` (not graded) per object.
    how : {"tail", "max", "mean"}, optional
        As :func:`rank_anomalies`.
    flagged : array_like of bool, shape (n,), optional
        Objects left unscored, ranked last.

    Returns
    -------
    combined : numpy.ndarray of shape (n,)
        As :func:`rank_anomalies` (NaN for flagged objects).
    rank : numpy.ndarray of shape (n,), int64
        1 for the first.

    Raises
    ------
    ValueError
        Grades other than ``anomaly``, ``not`` and ``""``, or of another length.

    Notes
    -----
    Learning from the grades which scorers' outliers are wanted (a logistic regression on
    the scaled scores of the graded objects, weighting the combined score) was measured
    with ``eval/anomaly_search.py`` and lowered the precision of the list on the built-in
    survey, so the grades only move the graded objects.

    Examples
    --------
    >>> scores = {"a": [5.0, 4.0, 3.0, 2.0, 1.0]}
    >>> rank_with_grades(scores, ["not", "", "", "anomaly", ""])[1].tolist()
    [5, 2, 3, 1, 4]
    """
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in scores.items()}
    n = len(next(iter(arrays.values()))) if arrays else 0
    grades = np.asarray(grades).astype(str)
    if grades.shape != (n,):
        msg = f"rank_with_grades: grades must have shape ({n},); got {grades.shape}"
        raise ValueError(msg)
    unknown = sorted(set(grades.tolist()) - {"anomaly", "not", ""})
    if unknown:
        msg = f"rank_with_grades: unknown grades {unknown[:3]}; allowed 'anomaly', 'not' or ''"
        raise ValueError(msg)
    combined, _ = rank_anomalies(arrays, how=how, flagged=flagged)
    good = np.isfinite(combined)
    group = np.where(~good, 3, np.where(grades == "anomaly", 0, np.where(grades == "not", 2, 1)))
    order = np.lexsort((np.arange(n), -np.nan_to_num(combined, nan=-np.inf), group))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(1, n + 1)
    return combined, rank


def flagged_last(rank, flagged):
    """Ranks with the ``flagged`` objects moved after every other, the order within each
    group kept.

    Parameters
    ----------
    rank : array_like of int, shape (n,)
        1, 2, ..., n.
    flagged : array_like of bool, shape (n,)

    Returns
    -------
    numpy.ndarray of shape (n,)

    Examples
    --------
    >>> flagged_last([1, 2, 3, 4], [True, False, False, False]).tolist()
    [4, 1, 2, 3]
    """
    rank = np.asarray(rank)
    flagged = np.asarray(flagged, dtype=bool)
    order = np.lexsort((rank, flagged))
    new = np.empty_like(rank)
    new[order] = np.arange(1, len(rank) + 1)
    return new
