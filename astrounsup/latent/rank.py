"""Ranks of scores: percentiles, their combination across scorers, and a rank order."""

from __future__ import annotations

import numpy as np

from astrounsup._estimators import check_choice

__all__ = ["combine_ranks", "descending_rank", "flagged_last", "rank_anomalies", "rank_scores"]


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


def rank_anomalies(scores, *, how="max", flagged=None):
    """Combine anomaly scores through their percentile ranks and rank every object, the
    ``flagged`` ones (e.g. cutouts with too many bad pixels) after all others and unscored.

    Parameters
    ----------
    scores : dict of str to array_like of shape (n,)
        Each scorer's scores (higher: more anomalous); the entries of flagged objects are
        not used.
    how : {"max", "mean"}, optional
        ``max``: an object odd to any one scorer ranks high (artefacts are found by
        different scorers); ``mean``: to most of them (:func:`combine_ranks`).
    flagged : array_like of bool, shape (n,), optional
        Objects left unscored.

    Returns
    -------
    combined : numpy.ndarray of shape (n,)
        The combination in [0, 1], computed over the objects not flagged; NaN for flagged
        ones.
    rank : numpy.ndarray of shape (n,), int64
        1 for the most anomalous; the flagged objects follow, in the order of the rows.

    Raises
    ------
    ValueError
        No scorer, scorers of other lengths, or every object flagged.

    Examples
    --------
    >>> combined, rank = rank_anomalies({"a": [0.1, 0.9, 0.5], "b": [3.0, 1.0, 2.0]},
    ...                                 flagged=[False, False, True])
    >>> combined.tolist(), rank.tolist()
    ([1.0, 1.0, nan], [1, 2, 3])
    """
    check_choice("rank_anomalies", "how", how, ("mean", "max"))
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
    combined[good] = combine_ranks({k: v[good] for k, v in arrays.items()}, how=how)
    rank = np.empty(n, dtype=np.int64)
    rank[good] = descending_rank(combined[good])
    rank[flagged] = n_good + 1 + np.arange(n - n_good)
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
