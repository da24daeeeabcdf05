"""Ranks of scores: percentiles, their combination across scorers, and a rank order."""

from __future__ import annotations

import numpy as np

from astrounsup._estimators import check_choice

__all__ = ["combine_ranks", "descending_rank", "rank_scores"]


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
