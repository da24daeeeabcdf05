"""Naming clusters from a few labeled members, and scoring the result."""

from __future__ import annotations

import numpy as np
from astropy.table import QTable
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from astrounsup._estimators import check_number
from astrounsup.latent.rank import descending_rank, flagged_last
from astrounsup.latent.score import LabelScorer

__all__ = [
    "ClusterLabeler",
    "binary_metrics",
    "draw_labeled",
    "known_labels",
    "label_clusters",
    "parse_positive",
    "purity",
]


def _memberships(clusters, owner):
    """``(n, K)`` membership weights and the cluster ids of the columns, from hard ids
    ``(n,)`` or responsibilities ``(n, K)``."""
    arr = np.asarray(clusters)
    if arr.ndim == 1:
        if not np.issubdtype(arr.dtype, np.integer):
            msg = f"{owner}: clusters must be integer cluster ids (n,) or (n, K) weights"
            raise ValueError(msg)
        ids, inverse = np.unique(arr, return_inverse=True)
        w = np.zeros((len(arr), len(ids)))
        w[np.arange(len(arr)), inverse] = 1.0
        return w, ids
    if arr.ndim == 2 and np.isfinite(arr).all() and (arr >= 0).all():
        return arr.astype(np.float64), np.arange(arr.shape[1])
    msg = (
        f"{owner}: clusters must be cluster ids of shape (n,) or non-negative "
        f"responsibilities of shape (n, K); got shape {arr.shape}"
    )
    raise ValueError(msg)


class ClusterLabeler(BaseEstimator):
    """Name clusters by the labels of their labeled members (e.g. a small vetted subset).

    Each cluster gets the fraction of each label among its labeled members; a cluster
    whose fraction of ``positive`` exceeds ``threshold`` is called positive (e.g. "lens").
    Every object then gets a candidate score (:meth:`positive_score`): its cluster's
    positive fraction, or for mixtures the responsibility-weighted mean of the fractions,
    so candidates can be ranked across clusters.

    Parameters
    ----------
    positive : object, optional
        The label of interest (``True`` for an ``is_lens`` column).
    threshold : float, optional
        Positive fraction above which a cluster is called positive.
    class_names : dict, optional
        Label -> name used in the table's column names (default ``str(label)``).

    Attributes
    ----------
    classes_ : numpy.ndarray
        The labels seen, sorted.
    cluster_ids_ : numpy.ndarray of shape (K,)
    counts_ : numpy.ndarray of shape (K, n_classes)
        (Soft) counts of labeled members of each class per cluster.
    fraction_ : numpy.ndarray of shape (K,)
        Positive fraction of each cluster's labeled members (NaN for a cluster without
        labeled members: it is never called positive and its objects score NaN).
    table_ : astropy.table.QTable
        One row per cluster: ``cluster``, ``n`` (all members), ``n_labeled``,
        ``frac_<name>`` per class, ``positive_share`` (share of all labeled positives in
        the cluster) and ``called_positive``.

    Examples
    --------
    >>> import numpy as np
    >>> clusters = np.array([0, 0, 0, 1, 1, 1])
    >>> is_lens = np.array([True, True, False, False, False, False])
    >>> lab = ClusterLabeler(positive=True).fit(clusters, is_lens)
    >>> lab.fraction_.round(3).tolist()
    [0.667, 0.0]
    >>> lab.predict(np.array([1, 0])).tolist()
    [False, True]
    """

    def __init__(self, *, positive=True, threshold=0.5, class_names=None):
        self.positive = positive
        self.threshold = threshold
        self.class_names = class_names

    def fit(self, clusters, y, *, labeled=None):
        """Count labels per cluster.

        Parameters
        ----------
        clusters : array_like of shape (n,) int, or (n, K) float
            Cluster ids, or membership probabilities (responsibilities).
        y : array_like of shape (n,)
            Labels; only the rows where ``labeled`` is true are used.
        labeled : array_like of shape (n,), bool, optional
            Which labels are known (default: all).

        Returns
        -------
        self
        """
        name = type(self).__name__
        check_number(name, "threshold", self.threshold, 0.0, 1.0)
        w, ids = _memberships(clusters, name)
        y = np.asarray(y)
        labeled = np.ones(len(y), bool) if labeled is None else np.asarray(labeled, bool)
        if y.shape != (len(w),) or labeled.shape != y.shape:
            msg = (
                f"{name}: y and labeled must have one entry per object ({len(w)}); got "
                f"{y.shape} and {labeled.shape}"
            )
            raise ValueError(msg)
        if not labeled.any():
            msg = f"{name}: no labeled objects (labeled is all false)"
            raise ValueError(msg)
        classes = np.unique(y[labeled])
        if self.positive not in classes.tolist():
            msg = f"{name}: positive={self.positive!r} is not among the labels {classes.tolist()}"
            raise ValueError(msg)
        onehot = (y[labeled, None] == classes[None, :]).astype(np.float64)
        counts = w[labeled].T @ onehot
        total = counts.sum(1)
        pos = classes.tolist().index(self.positive)
        with np.errstate(invalid="ignore", divide="ignore"):
            fractions = np.where(total[:, None] > 0, counts / total[:, None], np.nan)
        frac = fractions[:, pos]
        self.classes_ = classes
        self.cluster_ids_ = ids
        self.counts_ = counts
        self.fraction_ = frac
        names = self.class_names or {}
        table = QTable()
        table["cluster"] = ids
        table["n"] = np.round(w.sum(0), 6)
        table["n_labeled"] = np.round(total, 6)
        for j, c in enumerate(classes):
            table[f"frac_{names.get(c, str(c))}"] = fractions[:, j]
        table["positive_share"] = counts[:, pos] / counts[:, pos].sum()
        table["called_positive"] = np.nan_to_num(frac, nan=0.0) > self.threshold
        table.meta["positive"] = str(self.positive)
        table.meta["threshold"] = float(self.threshold)
        self.table_ = table
        return self

    def positive_score(self, clusters):
        """Candidate score of each object: the positive fraction of its cluster
        (responsibility-weighted for ``(n, K)`` input), in [0, 1]; NaN when its cluster
        has no labeled members.

        Parameters
        ----------
        clusters : array_like of shape (n,) int, or (n, K) float
            Cluster ids, or membership probabilities.

        Returns
        -------
        numpy.ndarray of shape (n,)
        """
        check_is_fitted(self)
        arr = np.asarray(clusters)
        if arr.ndim == 1:
            pos = np.searchsorted(self.cluster_ids_, arr)
            pos = np.clip(pos, 0, len(self.cluster_ids_) - 1)
            known = self.cluster_ids_[pos] == arr
            return np.where(known, self.fraction_[pos], np.nan)
        w, _ = _memberships(arr, type(self).__name__)
        if w.shape[1] != len(self.fraction_):
            msg = f"responsibilities need {len(self.fraction_)} columns; got {w.shape[1]}"
            raise ValueError(msg)
        f = np.nan_to_num(self.fraction_, nan=0.0)
        seen = w @ np.isfinite(self.fraction_).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(seen > 0, (w @ f) / seen, np.nan)

    def predict(self, clusters):
        """True for objects whose score exceeds ``threshold`` (never for NaN scores)."""
        return np.nan_to_num(self.positive_score(clusters), nan=0.0) > self.threshold


def binary_metrics(predicted, truth):
    """Accuracy, precision, recall (= completeness) and counts of a binary classification.

    Parameters
    ----------
    predicted, truth : array_like of shape (n,), bool

    Returns
    -------
    dict
        ``accuracy``, ``precision`` (NaN when nothing is predicted positive), ``recall``
        and ``completeness`` (the same number: the share of true positives recovered;
        NaN without positives), ``n``, ``n_true``, ``n_predicted``.

    Examples
    --------
    >>> m = binary_metrics([True, True, False, False], [True, False, False, True])
    >>> m["accuracy"], m["precision"], m["recall"]
    (0.5, 0.5, 0.5)
    """
    p = np.asarray(predicted, bool)
    t = np.asarray(truth, bool)
    if p.shape != t.shape or p.ndim != 1:
        msg = f"predicted and truth must be 1-D of equal length; got {p.shape} and {t.shape}"
        raise ValueError(msg)
    tp = int(np.sum(p & t))
    recall = tp / t.sum() if t.any() else float("nan")
    return {
        "accuracy": float(np.mean(p == t)) if len(t) else float("nan"),
        "precision": float(tp / p.sum()) if p.any() else float("nan"),
        "recall": float(recall),
        "completeness": float(recall),
        "n": len(t),
        "n_true": int(t.sum()),
        "n_predicted": int(p.sum()),
    }


def purity(clusters, labels):
    """Cluster purity: the share of objects carrying their cluster's majority label.

    Parameters
    ----------
    clusters : array_like of shape (n,), int
    labels : array_like of shape (n,)

    Returns
    -------
    float in (0, 1]

    Examples
    --------
    >>> purity([0, 0, 1, 1], ["a", "b", "c", "c"])
    0.75
    """
    c = np.asarray(clusters)
    y = np.asarray(labels)
    if c.shape != y.shape or c.ndim != 1 or len(c) == 0:
        msg = f"clusters and labels must be 1-D, non-empty, equal length; got {c.shape}, {y.shape}"
        raise ValueError(msg)
    _, ci = np.unique(c, return_inverse=True)
    _, yi = np.unique(y, return_inverse=True)
    table = np.zeros((ci.max() + 1, yi.max() + 1), dtype=np.int64)
    np.add.at(table, (ci, yi), 1)
    return float(table.max(1).sum() / len(c))


def known_labels(labels):
    """Which objects have a label: not masked, and not NaN in a float column.

    Parameters
    ----------
    labels : array_like or astropy column of shape (n,)

    Returns
    -------
    numpy.ndarray of shape (n,), bool

    Examples
    --------
    >>> known_labels([1.0, float("nan"), 0.0]).tolist()
    [True, False, True]
    """
    mask = getattr(labels, "mask", None)
    values = np.asarray(labels)
    known = np.ones(len(values), bool) if mask is None else ~np.asarray(mask, bool)
    if np.issubdtype(values.dtype, np.floating):
        known &= np.isfinite(values)
    return np.broadcast_to(known, values.shape[:1]).copy()


_TRUE = ("true", "1", "yes", "y", "t")
_FALSE = ("false", "0", "no", "n", "f")


def parse_positive(value, labels):
    """The label of interest as a value of ``labels``' type.

    Label columns come as booleans, 0/1 integers or strings (``"True"``, ``"lens"``, ...);
    ``value`` may be given as any of them, e.g. typed on a command line.

    Parameters
    ----------
    value : object or None
        The positive label; ``None`` means ``True`` (1 for a numeric column).
    labels : array_like of shape (n,)
        The label column.

    Returns
    -------
    bool, int, float or str
        A value that compares equal to the positive entries of ``labels``.

    Raises
    ------
    ValueError
        When ``value`` cannot be read as the column's type (naming both).

    Examples
    --------
    >>> parse_positive(None, [0, 1]), parse_positive("True", [0, 1]), parse_positive("1", [True])
    (1, 1, True)
    >>> parse_positive("Lens", ["lens", "galaxy"]), parse_positive(None, ["True", "False"])
    ('lens', 'True')
    """
    values = np.asarray(labels)
    kind = values.dtype.kind
    text = "True" if value is None else str(value)
    word = text.strip().lower()
    truth = (
        bool(value)
        if isinstance(value, (bool, np.bool_))
        else True
        if word in _TRUE
        else False
        if word in _FALSE
        else None
    )
    if kind == "b":
        if truth is None:
            msg = f"the positive label of a boolean column must be True or False; got {value!r}"
            raise ValueError(msg)
        return truth
    if kind in "iuf":
        cast = float if kind == "f" else int
        if truth is not None:
            return cast(truth)
        try:
            return float(text) if kind == "f" else int(text)
        except ValueError:
            msg = f"the positive label of a numeric column must be a number; got {value!r}"
            raise ValueError(msg) from None
    present = {str(v) for v in np.unique(values[known_labels(labels)])} if len(values) else set()
    if text in present:
        return text
    folded = [v for v in present if v.lower() == text.lower()]
    return folded[0] if len(folded) == 1 else text


def draw_labeled(known, fraction, *, seed=None):
    """A random share of the known labels: the "vetted" objects whose labels are used.

    Parameters
    ----------
    known : array_like of shape (n,), bool
        Which objects have a label (:func:`known_labels`).
    fraction : float or None
        Share in (0, 1] drawn independently per object; ``None`` keeps every known label.
    seed : int, numpy.random.Generator or None, optional

    Returns
    -------
    numpy.ndarray of shape (n,), bool

    Examples
    --------
    >>> int(draw_labeled(np.ones(1000, bool), 0.1, seed=0).sum())
    89
    """
    known = np.asarray(known, bool)
    if fraction is None:
        return known.copy()
    check_number("draw_labeled", "fraction", fraction, 0.0, 1.0)
    if fraction == 0:
        msg = "draw_labeled: fraction must be in (0, 1]; got 0"
        raise ValueError(msg)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    return known & (rng.random(len(known)) < fraction)


def label_clusters(
    clusters,
    labels,
    *,
    features=None,
    positive=None,
    labeled=None,
    threshold=0.5,
    name="positive",
    seed=0,
    flagged=None,
):
    """Name clusters from known labels, score every object, and measure the result.

    Two label regimes: labels of both classes for some objects (e.g. 10% vetted), or only
    known positives (``labels`` is True for the ~50 known lenses, nothing is known to be
    negative: every labeled row is positive). In the first, a cluster is called positive
    when the positive fraction of its labeled members exceeds ``threshold``; in the second,
    clusters are not called (a positive share says nothing without negatives) and the
    candidates are the objects whose probability exceeds ``threshold``. With ``features``,
    every object also gets its own calibrated probability from a
    :class:`astrounsup.latent.LabelScorer` over the features and the clusters: the
    candidates are then the objects whose probability exceeds ``threshold`` in both
    regimes, ranked by it without ties (the named clusters stay in the summary).

    Parameters
    ----------
    clusters : array_like of shape (n,) int, or (n, K) float
        Cluster ids, or mixture responsibilities.
    labels : array_like or astropy column of shape (n,)
        Labels of any type (bool, 0/1, strings); masked or NaN entries are unknown.
    features : array_like of shape (n, d), optional
        The space the clusters were found in (e.g. the reduced latents), for the
        per-object score; required with only known positives.
    positive : object, optional
        The label of interest (:func:`parse_positive`; default ``True``, or 1).
    labeled : array_like of shape (n,), bool, optional
        Which known labels are used (default: all; :func:`draw_labeled` draws a share).
        The known labels left out measure the result.
    threshold : float, optional
        Positive fraction (or probability) above which a cluster (or object) is a
        candidate.
    name : str, optional
        Stem of the column names, e.g. ``"lens"``.
    seed : int, optional
        Seed of the scorer's cross-fitting folds.
    flagged : array_like of shape (n,), bool, optional
        Objects that are no candidates whatever their score and rank after every other
        (e.g. cutouts with too many bad pixels); the metrics are those before.

    Returns
    -------
    columns : dict of str to numpy.ndarray of shape (n,)
        ``<name>_cluster_fraction`` (the positive fraction of the object's cluster among
        its labeled members; with only known positives, the share of the cluster's members
        that are known), ``<name>_candidate``, ``labeled``, and with ``features``
        ``<name>_score`` (calibrated probability) and ``<name>_rank`` (1 = best; by the
        scorer's log-odds, :func:`astrounsup.latent.descending_rank`); without features
        the rank follows the cluster fraction (members of a cluster tie).
    summary : astropy.table.QTable
        One row per cluster (:attr:`ClusterLabeler.table_`).
    metrics : dict
        ``regime`` (``"labeled"`` or ``"positive-unlabeled"``), ``evaluated_on``
        ("held-out known labels", or "the labeled rows" when every known label was
        used), ``n_labeled``, and in the labeled regime ``purity`` and
        :func:`binary_metrics` of the candidates, with ``features`` also ``score_auroc``
        and ``score_brier`` of the probability on the same rows and
        ``cluster_call_<metric>`` of the named clusters' call.

    Raises
    ------
    ValueError
        No labeled object, ``positive`` not among the labels (naming them), or only
        known positives without ``features``.

    Examples
    --------
    >>> clusters = np.array([0, 0, 0, 1, 1, 1])
    >>> is_lens = np.array([True, True, False, False, False, True])
    >>> labeled = np.array([True, True, True, True, True, False])
    >>> columns, summary, metrics = label_clusters(clusters, is_lens, labeled=labeled,
    ...                                           name="lens")
    >>> columns["lens_cluster_fraction"].round(2).tolist()
    [0.67, 0.67, 0.67, 0.0, 0.0, 0.0]
    >>> metrics["evaluated_on"], metrics["accuracy"]
    ('held-out known labels', 0.0)
    """
    from sklearn.metrics import roc_auc_score

    y = np.asarray(labels)
    known = known_labels(labels)
    labeled = known if labeled is None else np.asarray(labeled, bool) & known
    positive = parse_positive(positive, labels)
    present = np.unique(y[known]).tolist() if known.any() else []
    if positive not in present:
        msg = (
            f"the positive label {positive!r} is not among the labels {present}; name the "
            "label of interest"
        )
        raise ValueError(msg)
    if not labeled.any():
        msg = "no labeled objects (labeled is all false)"
        raise ValueError(msg)
    only_positives = bool(np.all(y[labeled] == positive))
    if only_positives and features is None:
        msg = (
            "only positives are labeled: scoring them needs features= (the space the "
            "clusters were found in)"
        )
        raise ValueError(msg)
    hard = np.asarray(clusters)
    hard = hard.argmax(1) if hard.ndim == 2 else hard
    if only_positives:
        # Known positives against every other object: the cluster's share of known members.
        names = {True: f"known_{name}", False: "other"}
        lab = ClusterLabeler(positive=True, threshold=threshold, class_names=names)
        lab.fit(clusters, labeled, labeled=np.ones(len(y), bool))
        lab.table_.meta["positive"] = str(positive)
        lab.table_.remove_column("called_positive")
    else:
        names = {True: name, False: f"not_{name}"} if y.dtype == bool else None
        lab = ClusterLabeler(positive=positive, threshold=threshold, class_names=names)
        lab.fit(clusters, y, labeled=labeled)
    fraction = lab.positive_score(clusters)
    columns = {f"{name}_cluster_fraction": fraction}
    metrics = {"regime": "positive-unlabeled" if only_positives else "labeled"}
    if features is not None:
        scorer = LabelScorer(positive=positive, random_state=seed)
        scorer.fit(features, y, labeled=labeled, clusters=hard)
        columns[f"{name}_score"] = scorer.probability_
        rank = descending_rank(scorer.scores_)
        if only_positives:
            metrics["label_frequency"] = scorer.label_frequency_
    else:
        rank = descending_rank(fraction)
    # With features the call is each object's calibrated probability; the named clusters
    # stay in the summary (and their call in the metrics), the k-means draw barely moves it.
    named = None if only_positives else lab.predict(clusters)
    predicted = scorer.probability_ > threshold if features is not None else named
    columns[f"{name}_candidate"] = predicted
    columns[f"{name}_rank"] = rank
    columns["labeled"] = labeled
    held_out = known & ~labeled
    scored = held_out if held_out.any() else labeled
    metrics |= {
        "evaluated_on": "held-out known labels" if held_out.any() else "the labeled rows",
        "n_labeled": int(labeled.sum()),
    }
    if not only_positives:
        truth = y[scored] == positive
        metrics |= {"purity": purity(hard[scored], y[scored])}
        metrics |= binary_metrics(predicted[scored], truth)
        if features is not None:
            cluster_call = binary_metrics(named[scored], truth)
            metrics |= {f"cluster_call_{k}": v for k, v in cluster_call.items() if k != "n"}
        if features is not None:
            both = truth.any() and not truth.all()
            auroc = roc_auc_score(truth, scorer.scores_[scored]) if both else np.nan
            metrics["score_auroc"] = float(auroc)
            metrics["score_brier"] = float(np.mean((scorer.probability_[scored] - truth) ** 2))
    if flagged is not None and np.any(flagged):
        flagged = np.asarray(flagged, dtype=bool)
        columns[f"{name}_rank"] = flagged_last(rank, flagged)
        columns[f"{name}_candidate"] = np.asarray(predicted, dtype=bool) & ~flagged
    return columns, lab.table_, metrics
