"""Anomaly scores in a latent space: isolation forest, local outlier factor, k-NN distance;
scores relative to look-alike objects; model scores judged in context."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted, validate_data

from astrounsup._estimators import as_rng_seed, check_choice, check_int, fit_scaler
from astrounsup.latent.reduce import Reducer

__all__ = [
    "ARTEFACT_SCORES",
    "CONTEXT_ERRORS",
    "SCORERS",
    "AnomalyScorer",
    "context_model_scores",
    "contextual_scores",
    "model_scores_to_rank",
]

#: The model scores that :func:`context_model_scores` puts in context.
CONTEXT_ERRORS = ("chi2", "chi2_max", "chi2_extended")

#: Model scores of artefacts (:func:`astrounsup.latent.model_scores`), combined as they
#: are: a trail is no property of an object's kind, so its look-alikes say nothing of it.
ARTEFACT_SCORES = ("line",)

#: Latent-space scorers of :class:`AnomalyScorer`.
SCORERS = ("iforest", "lof", "knn")


class AnomalyScorer(BaseEstimator):
    """Anomaly score of latent vectors; higher means more unusual.

    Parameters
    ----------
    method : {"iforest", "lof", "knn"}
        ``iforest``: isolation forest (shorter isolation paths score higher);
        ``lof``: local outlier factor (density relative to the neighbours');
        ``knn``: mean distance to the ``n_neighbors`` nearest other objects.
    n_neighbors : int, optional
        For ``lof`` and ``knn``.
    n_estimators : int, optional
        Trees of the isolation forest.
    standardize : bool, optional
        Scale each latent dimension to unit variance first.
    random_state : int, numpy.random.Generator or None, optional

    Attributes
    ----------
    anomaly_scores_ : numpy.ndarray of shape (n,)
        Anomaly score of each fitted object (higher: more unusual), each object left out
        of its own neighbourhood (``lof``, ``knn``).
    estimator_ : sklearn estimator
    scaler_ : sklearn.preprocessing.StandardScaler or None
    n_features_in_ : int

    Notes
    -----
    :meth:`anomaly_score` scores new objects, higher meaning more unusual;
    :meth:`score_samples` is its negative, scikit-learn's convention for outlier detectors
    (the lower, the more abnormal). Neither is for the fitted objects themselves, which
    ``lof`` and ``knn`` would count as their own neighbours: use :attr:`anomaly_scores_`.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = np.concatenate([rng.normal(0, 1, (200, 3)), [[8.0, 8.0, 8.0]]])
    >>> scorer = AnomalyScorer("knn", random_state=0).fit(x)
    >>> int(np.argmax(scorer.anomaly_scores_))
    200
    >>> new = scorer.anomaly_score([[0.0, 0.0, 0.0], [6.0, 6.0, 6.0]])
    >>> bool(new[1] > new[0]), bool((scorer.score_samples([[6.0, 6.0, 6.0]]) < 0).all())
    (True, True)
    """

    def __init__(
        self, method="iforest", *, n_neighbors=20, n_estimators=200, standardize=True,
        random_state=None,
    ):  # fmt: skip
        self.method = method
        self.n_neighbors = n_neighbors
        self.n_estimators = n_estimators
        self.standardize = standardize
        self.random_state = random_state

    def fit(self, X, y=None):
        """Fit on ``X`` of shape (n, n_features); ``y`` is ignored. Returns ``self``."""
        from sklearn.ensemble import IsolationForest
        from sklearn.neighbors import LocalOutlierFactor, NearestNeighbors

        name = type(self).__name__
        check_choice(name, "method", self.method, SCORERS)
        check_int(name, "n_neighbors", self.n_neighbors, 1)
        check_int(name, "n_estimators", self.n_estimators, 1)
        X = validate_data(self, X, dtype=[np.float64, np.float32])
        if self.method != "iforest" and len(X) <= self.n_neighbors:
            msg = (
                f"{name}: n_neighbors={self.n_neighbors} needs more than n_neighbors "
                f"samples; got {len(X)} sample(s) (lower n_neighbors)"
            )
            raise ValueError(msg)
        self.scaler_, Z = fit_scaler(X, self.standardize)
        if self.method == "iforest":
            est = IsolationForest(
                n_estimators=self.n_estimators, random_state=as_rng_seed(self.random_state)
            ).fit(Z)
            self.anomaly_scores_ = -est.score_samples(Z)
        elif self.method == "lof":
            est = LocalOutlierFactor(n_neighbors=self.n_neighbors, novelty=True).fit(Z)
            self.anomaly_scores_ = -est.negative_outlier_factor_
        else:
            est = NearestNeighbors(n_neighbors=self.n_neighbors + 1).fit(Z)
            dist, _ = est.kneighbors(Z)
            self.anomaly_scores_ = dist[:, 1:].mean(1)
        self.estimator_ = est
        return self

    def fit_score(self, X, y=None):
        """Fit on ``X`` and return :attr:`anomaly_scores_`, shape (n,)."""
        return self.fit(X).anomaly_scores_.copy()

    def anomaly_score(self, X):
        """Anomaly score of new objects ``X`` (n, n_features), shape (n,); higher is more
        unusual.

        Not to be applied to the fitted objects themselves: ``lof`` and ``knn`` would
        count each object as its own neighbour; use :attr:`anomaly_scores_`.
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        Z = self.scaler_.transform(X) if self.scaler_ is not None else X
        if self.method == "iforest":
            return -self.estimator_.score_samples(Z)
        if self.method == "lof":
            return -self.estimator_.score_samples(Z)
        dist, _ = self.estimator_.kneighbors(Z, n_neighbors=self.n_neighbors)
        return dist.mean(1)

    def score_samples(self, X):
        """scikit-learn's score of new objects ``X`` (n, n_features): the negative of
        :meth:`anomaly_score`, so the lower, the more abnormal. Shape (n,)."""
        return -self.anomaly_score(X)


def contextual_scores(scores, latents, *, n_neighbors=50, standardize=True, log=True):
    """Each object's score relative to the scores of the objects that look like it.

    A reconstruction error depends on what the object is: galaxy pairs, bright galaxies
    and lenses are all reconstructed worse than a lone faint galaxy, so their raw errors
    crowd the top of an anomaly list. Subtracting the median score of each object's
    nearest neighbours in a latent space (ideally one that groups objects by morphology
    and ignores noise, such as a SimCLR embedding of the same cutouts) leaves what is
    unusual *for that kind of object*: a trail across a pair still stands out, the pair
    itself no longer does.

    Parameters
    ----------
    scores : array_like of shape (n,) or (n, m)
        One or ``m`` scores per object (higher: more anomalous); NaN for an object
        without a score (e.g. a cutout with every pixel masked).
    latents : array_like of shape (n, d)
        The space in which neighbours are found; row ``i`` is the object of ``scores[i]``.
    n_neighbors : int, optional
        Neighbours per object (the object itself is not one of them); fewer than ``n``.
    standardize : bool, optional
        Scale each latent dimension to unit variance before the neighbour search.
    log : bool, optional
        Compare ``log(score)`` (scores must then be > 0): the result is the log of the
        ratio of the score to the neighbours' median, so errors that scale with
        brightness are compared on one footing.

    Returns
    -------
    numpy.ndarray of the shape of ``scores``
        ``f(score) - median(f(score of the neighbours))`` with ``f`` the log (or the
        identity); NaN neighbours are left out of the median, and the result is NaN where
        the object's own score is NaN or every neighbour's is.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> z = np.concatenate([rng.normal(0, 1, (100, 2)), rng.normal(10, 1, (100, 2))])
    >>> s = np.where(np.arange(200) < 100, 1.0, 10.0)  # the second group is always worse
    >>> s[150] = 30.0  # odd for its group, though not the largest score overall
    >>> s[[20, 150, 199]].round(2).tolist()
    [1.0, 30.0, 10.0]
    >>> contextual_scores(s, z, n_neighbors=10)[[20, 150, 199]].round(2).tolist()
    [0.0, 1.1, 0.0]
    """
    from sklearn.neighbors import NearestNeighbors

    name = "contextual_scores"
    check_int(name, "n_neighbors", n_neighbors, 1)
    s = np.asarray(scores, dtype=np.float64)
    z = np.asarray(latents, dtype=np.float64)
    if s.ndim not in (1, 2):
        msg = f"{name}: scores must have shape (n,) or (n, m); got shape {s.shape}"
        raise ValueError(msg)
    if z.ndim != 2 or len(z) != len(s):
        msg = (
            f"{name}: latents must have shape (n, d) with n = len(scores) = {len(s)}; "
            f"got shape {z.shape}"
        )
        raise ValueError(msg)
    if not np.isfinite(z).all():
        bad = int((~np.isfinite(z)).any(1).sum())
        msg = f"{name}: latents must be finite; got {bad} row(s) with NaN or inf"
        raise ValueError(msg)
    if len(z) <= n_neighbors:
        msg = (
            f"{name}: n_neighbors={n_neighbors} needs more than n_neighbors objects; got {len(z)}"
        )
        raise ValueError(msg)
    if np.isinf(s).any():
        msg = f"{name}: scores must be finite or NaN; got {int(np.isinf(s).sum())} inf"
        raise ValueError(msg)
    if log:
        low = s[np.isfinite(s)]
        if low.size and low.min() <= 0:
            msg = f"{name}: scores must be > 0 with log=True; got a minimum of {float(low.min())}"
            raise ValueError(msg)
        s = np.log(s)
    _, z = fit_scaler(z, standardize)
    idx = NearestNeighbors(n_neighbors=n_neighbors + 1).fit(z).kneighbors(z)[1]
    # Each object's own row is dropped by index, not by position: with duplicate latents
    # the object need not come first among its distance-0 neighbours.
    own = idx == np.arange(len(z))[:, None]
    drop = np.where(own.any(1), own.argmax(1), n_neighbors)
    keep = np.ones(idx.shape, dtype=bool)
    keep[np.arange(len(z)), drop] = False
    idx = idx[keep].reshape(len(z), n_neighbors)
    flat = s.reshape(len(s), -1)
    out = np.full(flat.shape, np.nan)
    for j in range(flat.shape[1]):
        nb = flat[:, j][idx]
        ok = np.isfinite(nb).any(1) & np.isfinite(flat[:, j])
        out[ok, j] = flat[ok, j] - np.nanmedian(nb[ok], axis=1)
    return out.reshape(s.shape)


def context_model_scores(scores, context, *, n_neighbors=50, n_components=16, seed=0):
    """Model scores judged against look-alike objects: what ``astrounsup anomalies --recon
    --context`` combines.

    The context latents (e.g. a SimCLR embedding of the same cutouts) are reduced to their
    first ``n_components`` principal components. In that space each model score is given
    relative to its ``n_neighbors`` nearest objects' (:func:`contextual_scores`; the squared
    errors as log ratios, the ELBO, already a log-likelihood, as a difference), and a local
    outlier factor is computed in the joint space of the components and the three log
    reconstruction errors: an object odd in look and in residual together, such as a ring
    galaxy, which neither alone singles out.

    Parameters
    ----------
    scores : dict of str to array_like of shape (n,)
        The chi-squares of :func:`astrounsup.latent.model_scores`: ``"chi2"``,
        ``"chi2_max"``, ``"chi2_extended"`` and optionally ``"elbo"``; NaN for a cutout with
        every pixel masked.
    context : array_like of shape (n, d)
        Row ``i`` is the object of ``scores[...][i]``.
    n_neighbors : int, optional
        Neighbours per object, for the relative scores and the LOF alike.
    n_components : int, optional
        Principal components kept (0, or at least ``d``: all dimensions as they are).
    seed : int, optional
        Seeds the PCA's randomised solver.

    Returns
    -------
    dict of str to numpy.ndarray of shape (n,)
        ``"<name>_context"`` for each score, and ``"context_lof"`` (NaN where a
        reconstruction error is NaN).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> z = np.concatenate([rng.normal(0, 1, (100, 4)), rng.normal(6, 1, (100, 4))])
    >>> errors = {k: np.where(np.arange(200) < 100, 1.0, 3.0) * rng.lognormal(0, 0.1, 200)
    ...           for k in ("chi2", "chi2_max", "chi2_extended")}
    >>> errors["chi2"][150] *= 4.0  # four times worse than the objects like it
    >>> out = context_model_scores(errors, z, n_neighbors=10, n_components=2)
    >>> sorted(out), int(np.argmax(out["chi2_context"]))
    (['chi2_context', 'chi2_extended_context', 'chi2_max_context', 'context_lof'], 150)
    """

    name = "context_model_scores"
    check_int(name, "n_components", n_components, 0)
    errors = CONTEXT_ERRORS
    missing = [k for k in errors if k not in scores]
    unknown = sorted(set(scores) - {*errors, "elbo"})
    if missing or unknown:
        msg = (
            f"{name}: scores must hold {list(errors)} and optionally 'elbo'; missing "
            f"{missing}, unknown {unknown}"
        )
        raise ValueError(msg)
    z = np.asarray(context, dtype=np.float64)
    if z.ndim == 2 and not np.isfinite(z).all():
        bad = int((~np.isfinite(z)).any(1).sum())
        msg = f"{name}: context must be finite; got {bad} row(s) with NaN or inf"
        raise ValueError(msg)
    if z.ndim == 2 and 0 < n_components < z.shape[1]:
        pca = Reducer("pca", n_components=n_components, standardize=False, random_state=seed)
        z = pca.fit_transform(z)
    err = np.stack([np.asarray(scores[k], dtype=np.float64) for k in errors], 1)
    rel = contextual_scores(err, z, n_neighbors=n_neighbors)  # validates shapes and values
    out = {f"{k}_context": rel[:, j] for j, k in enumerate(errors)}
    if "elbo" in scores:
        out["elbo_context"] = contextual_scores(
            scores["elbo"], z, n_neighbors=n_neighbors, log=False
        )
    ok = np.isfinite(err).all(1)
    if ok.sum() <= n_neighbors:
        msg = (
            f"{name}: n_neighbors={n_neighbors} needs more objects with reconstruction "
            f"errors than that; got {int(ok.sum())}"
        )
        raise ValueError(msg)
    out["context_lof"] = np.full(len(err), np.nan)
    lof = AnomalyScorer("lof", n_neighbors=n_neighbors)
    out["context_lof"][ok] = lof.fit_score(np.hstack([z[ok], np.log(err[ok])]))
    return out


def model_scores_to_rank(errors, *, context=None, n_neighbors=50, n_components=16, seed=0):
    """Which model scores an anomaly ranking combines, and which it only shows.

    Without ``context`` the reconstruction chi-squares (:data:`CONTEXT_ERRORS`), the
    negative ELBO, the inpainting errors and the artefact scores
    (:data:`ARTEFACT_SCORES`) are combined as they are. With ``context`` (latents of the
    same objects in another embedding) the chi-squares and the ELBO are replaced by their
    judgement against look-alikes (:func:`context_model_scores`), the inpainting errors by
    theirs (:func:`contextual_scores`, ``<name>_context``), and the artefact scores stay as
    they are. Every other score (e.g. the per-band chi-squares) is shown, not combined.

    Parameters
    ----------
    errors : dict of str to array_like of shape (n,)
        :func:`astrounsup.latent.model_scores`.
    context : array_like of shape (n, d), optional
    n_neighbors, n_components, seed : optional
        As :func:`context_model_scores`.

    Returns
    -------
    ranked : dict of str to numpy.ndarray of shape (n,)
        The scores to combine (:func:`astrounsup.latent.rank_anomalies`).
    shown : dict of str to numpy.ndarray
        The scores kept beside them.

    Examples
    --------
    >>> ranked, shown = model_scores_to_rank({"chi2": [1.0, 2.0], "chi2_g": [1.0, 3.0]})
    >>> list(ranked), list(shown)
    (['chi2'], ['chi2_g'])
    """
    errors = {k: np.asarray(v) for k, v in errors.items()}
    combined = [k for k in errors if k in (*CONTEXT_ERRORS, "elbo")]
    inpainted = [k for k in errors if k.startswith("inpaint_")]
    artefacts = [k for k in errors if k in ARTEFACT_SCORES]
    if context is None:
        used = combined + inpainted + artefacts
        shown = {k: v for k, v in errors.items() if k not in used}
        return {k: errors[k] for k in used}, shown
    shown = {k: v for k, v in errors.items() if k not in artefacts}
    ranked = {k: errors[k] for k in artefacts}
    ranked |= context_model_scores(
        {k: errors[k] for k in combined}, context, n_neighbors=n_neighbors,
        n_components=n_components, seed=seed,
    )  # fmt: skip
    for k in inpainted:
        ranked[f"{k}_context"] = contextual_scores(errors[k], context, n_neighbors=n_neighbors)
    return ranked, shown
