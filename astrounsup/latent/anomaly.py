"""Anomaly scores: isolation forest, local outlier factor, k-NN distance, reconstruction
error and the VAE's negative ELBO; ranks and their combination."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted, validate_data

from astrounsup.latent._common import as_rng_seed, check_choice, check_int, fit_scaler

__all__ = [
    "SCORERS",
    "AnomalyScorer",
    "combine_ranks",
    "context_model_scores",
    "contextual_scores",
    "model_scores",
    "negative_elbo",
    "rank_scores",
    "reconstruction_error",
]

#: Latent-space scorers of :class:`AnomalyScorer`.
SCORERS = ("iforest", "lof", "knn")

#: Reductions of :func:`reconstruction_error`.
_REDUCTIONS = ("mean", "max", "extended")


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
    estimator_ : sklearn estimator
    scaler_ : sklearn.preprocessing.StandardScaler or None
    n_features_in_ : int

    Notes
    -----
    Scores of the fitted objects themselves come from :meth:`fit_score`, which leaves
    each object out of its own neighbourhood (``lof``, ``knn``); :meth:`anomaly_score` is
    for new objects. scikit-learn's ``score_samples`` is the opposite convention (higher is
    more normal); here higher is always more anomalous.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = np.concatenate([rng.normal(0, 1, (200, 3)), [[8.0, 8.0, 8.0]]])
    >>> s = AnomalyScorer("knn", random_state=0).fit_score(x)
    >>> int(np.argmax(s))
    200
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
            self._train_scores = -est.score_samples(Z)
        elif self.method == "lof":
            est = LocalOutlierFactor(n_neighbors=self.n_neighbors, novelty=True).fit(Z)
            self._train_scores = -est.negative_outlier_factor_
        else:
            est = NearestNeighbors(n_neighbors=self.n_neighbors + 1).fit(Z)
            dist, _ = est.kneighbors(Z)
            self._train_scores = dist[:, 1:].mean(1)
        self.estimator_ = est
        return self

    def fit_score(self, X, y=None):
        """Fit on ``X`` and return the anomaly score of each of its objects, shape (n,)."""
        return self.fit(X)._train_scores.copy()

    def anomaly_score(self, X):
        """Anomaly score of new objects ``X`` (n, n_features), shape (n,).

        Not to be applied to the fitted objects themselves: ``lof`` and ``knn`` would
        count each object as its own neighbour; use :meth:`fit_score`.
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
        :func:`model_scores` output: ``"recon"``, ``"recon_max"``, ``"recon_extended"`` and
        optionally ``"elbo"``; NaN for a cutout with every pixel masked.
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
    ...           for k in ("recon", "recon_max", "recon_extended")}
    >>> errors["recon"][150] *= 4.0  # four times worse than the objects like it
    >>> out = context_model_scores(errors, z, n_neighbors=10, n_components=2)
    >>> sorted(out), int(np.argmax(out["recon_context"]))
    (['context_lof', 'recon_context', 'recon_extended_context', 'recon_max_context'], 150)
    """
    from astrounsup.latent.reduce import Reducer

    name = "context_model_scores"
    check_int(name, "n_components", n_components, 0)
    errors = ("recon", "recon_max", "recon_extended")
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


@torch.no_grad()
def reconstruction_error(
    model, dataset, *, batch_size=256, device=None, reduction="mean", smoothing=5
):
    """Squared reconstruction error per object over its unmasked pixels.

    Parameters
    ----------
    model : torch.nn.Module
        An autoencoder (``model(x)`` is the reconstruction) or a VAE (the decoded
        posterior mean is used, so the error is deterministic).
    dataset : astrounsup.io.CutoutDataset
        Normalised as the model's training data.
    batch_size : int, optional
    device : str or torch.device, optional
    reduction : {"mean", "max", "extended"}, optional
        ``mean``: the mean over pixels and bands (extended anomalies: trails, ghosts);
        ``max``: the largest of any one pixel, which compact artefacts such as cosmic rays
        raise while the mean dilutes them; ``extended``: the residual averaged over the
        bands and over ``smoothing`` x ``smoothing`` pixel windows, then squared and
        averaged over the windows. Faint extended light (reflection ghosts, scattered
        light, faint trails) lies below the noise in every pixel, so ``mean`` barely sees
        it; averaging ``smoothing**2`` pixels and the bands shrinks the noise by
        ``smoothing * sqrt(bands)`` and keeps the light.
    smoothing : int, optional
        Side of the averaging window of ``reduction="extended"``, pixels; odd, >= 1 and
        at most the cutout side. Windows are cut by the cutout's edge, and masked pixels
        are left out of their window's average.

    Returns
    -------
    numpy.ndarray of shape (n,), float64
        In normalised units squared; NaN for an object with every pixel masked.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from astrounsup.io import CutoutDataset
    >>> from astrounsup.models import ConvAutoencoder
    >>> images = np.random.default_rng(0).normal(size=(4, 2, 16, 16)).astype("float32")
    >>> model = ConvAutoencoder(2, size=16, latent_dim=4, widths=(4, 8))
    >>> err = reconstruction_error(model, CutoutDataset(images), reduction="extended")
    >>> err.shape
    (4,)
    """
    owner = "reconstruction_error"
    check_choice(owner, "reduction", reduction, _REDUCTIONS)
    _check_smoothing(owner, smoothing, dataset)
    return _reconstruction_errors(model, dataset, (reduction,), batch_size, device, smoothing)[
        reduction
    ]


def _check_smoothing(owner, smoothing, dataset):
    check_int(owner, "smoothing", smoothing, 1)
    side = int(dataset[0][0].shape[-1]) if len(dataset) else smoothing
    if smoothing % 2 == 0 or smoothing > side:
        msg = f"{owner}: smoothing must be an odd integer in [1, {side}] (px); got {smoothing!r}"
        raise ValueError(msg)


def _window_mean(r, keep, smoothing):
    """Band- and window-averaged residual of unmasked pixels, (B, 1, H, W), and whether
    each window holds any unmasked pixel, (B, 1, H, W)."""
    pad = smoothing // 2
    band_keep = keep.sum(1, keepdim=True)
    num = torch.nn.functional.avg_pool2d(
        r.sum(1, keepdim=True), smoothing, stride=1, padding=pad, count_include_pad=False
    )
    den = torch.nn.functional.avg_pool2d(
        band_keep, smoothing, stride=1, padding=pad, count_include_pad=False
    )
    ok = den > 0
    return torch.where(ok, num / den.clamp(min=1e-12), 0.0), ok


@torch.no_grad()
def _reconstruction_errors(model, dataset, reductions, batch_size, device, smoothing):
    """Every requested reduction of the residuals from one pass over ``dataset``
    (``smoothing``: the window side of ``"extended"``, checked by the caller)."""
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model = model.to(device).eval()
    out = {r: [] for r in reductions}
    is_vae = hasattr(model, "posterior")
    for images, masks, _ in dataset.loader(batch_size):
        x = images.to(device)
        recon = model.decode(model.posterior(x)[0])[0] if is_vae else model(x)
        keep = (~masks.to(device)).to(torch.float32)
        resid = (x.float() - recon.float()) * keep
        sq = (resid**2).flatten(1)
        n = keep.flatten(1).sum(1)
        for r in reductions:
            if r == "mean":
                err = sq.sum(1) / n.clamp(min=1)
            elif r == "max":
                err = sq.max(1).values
            else:
                smooth, ok = _window_mean(resid, keep, smoothing)
                err = (smooth**2).flatten(1).sum(1) / ok.flatten(1).sum(1).clamp(min=1)
            out[r].append(torch.where(n > 0, err, torch.nan).double().cpu().numpy())
    return {r: np.concatenate(v) if v else np.empty(0) for r, v in out.items()}


@torch.no_grad()
def negative_elbo(model, dataset, *, batch_size=256, device=None, seed=0):
    """The VAE's negative evidence lower bound per object (nats; higher = less likely).

    Parameters
    ----------
    model : astrounsup.models.VAE
    dataset : astrounsup.io.CutoutDataset
    batch_size : int, optional
    device : str or torch.device, optional
    seed : int, optional
        Seeds the one posterior draw per object, so repeated calls agree.

    Returns
    -------
    numpy.ndarray of shape (n,), float64
        ``nll + kl`` per pixel, as :meth:`astrounsup.models.VAE.elbo` defines them.
    """
    if not hasattr(model, "elbo"):
        msg = f"negative_elbo needs a VAE (a model with elbo()); got {type(model).__name__}"
        raise TypeError(msg)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model = model.to(device).eval()
    gen = torch.Generator(device=device).manual_seed(seed)
    out = []
    for images, masks, _ in dataset.loader(batch_size):
        terms = model.elbo(images.to(device), mask=masks.to(device), generator=gen)
        out.append(-terms["elbo"].double().cpu().numpy())
    return np.concatenate(out) if out else np.empty(0)


def model_scores(checkpoint, store, *, batch_size=256, device=None, smoothing=5):
    """Model-based anomaly scores of every cutout of ``store``.

    Parameters
    ----------
    checkpoint : str or pathlib.Path
        An autoencoder or VAE checkpoint (contrastive models cannot reconstruct).
    store : str or pathlib.Path
        The HDF5 store (normalised as the training data).
    batch_size : int, optional
    device : str or torch.device, optional
    smoothing : int, optional
        Window side of ``"recon_extended"``, px (see :func:`reconstruction_error`).

    Returns
    -------
    dict of str to numpy.ndarray of shape (n,)
        ``"recon"`` (:func:`reconstruction_error`, mean), ``"recon_max"`` (its largest
        pixel), ``"recon_extended"`` (its window-averaged residual) and, for a VAE,
        ``"elbo"`` (:func:`negative_elbo`).

    Raises
    ------
    ValueError
        For a model without a decoder, naming it and the checkpoint.
    """
    from astrounsup.latent.embed import model_and_dataset

    model, _extra, data = model_and_dataset(checkpoint, store)
    if not hasattr(model, "decoder"):
        msg = (
            f"{checkpoint}: a {type(model).__name__} has no decoder, so no reconstruction "
            "error; use an autoencoder or VAE checkpoint"
        )
        raise ValueError(msg)
    _check_smoothing("model_scores", smoothing, data)
    errors = _reconstruction_errors(model, data, _REDUCTIONS, batch_size, device, smoothing)
    out = {
        "recon": errors["mean"],
        "recon_max": errors["max"],
        "recon_extended": errors["extended"],
    }
    if hasattr(model, "elbo"):
        out["elbo"] = negative_elbo(model, data, batch_size=batch_size, device=device)
    return out
