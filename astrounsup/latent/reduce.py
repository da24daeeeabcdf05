"""Dimensionality reduction of latent vectors or feature tables: PCA, UMAP, t-SNE."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from astrounsup._estimators import as_rng_seed, check_choice, check_int, fit_scaler

__all__ = ["DEFAULT_FIT_SIZE", "REDUCERS", "REDUCER_METRICS", "TSNE_MAX_OBJECTS", "Reducer"]

#: Methods of :class:`Reducer` (and ``astrounsup reduce --method``).
REDUCERS = ("pca", "umap", "tsne")
#: Distances UMAP and t-SNE can use between input vectors (PCA is Euclidean).
REDUCER_METRICS = ("euclidean", "cosine")

#: t-SNE is quadratic-ish in memory and time and cannot place new objects: refused above.
TSNE_MAX_OBJECTS = 20_000
#: Objects a PCA or UMAP is fitted on by default; the rest are placed with ``transform``
#: (a map of 10^5 objects shows the structure of any survey; fitting UMAP on 10^7 would
#: take days on a laptop).
DEFAULT_FIT_SIZE = 100_000


class Reducer(TransformerMixin, BaseEstimator):
    """Project features to a few dimensions with PCA, UMAP or t-SNE.

    For large sets the reduction is fitted on a random subsample (``fit_size``, by default
    :data:`DEFAULT_FIT_SIZE` objects) and every other object is placed with ``transform``,
    ``chunk_size`` at a time (PCA and UMAP; t-SNE cannot place new objects and is refused
    above :data:`TSNE_MAX_OBJECTS`).

    Parameters
    ----------
    method : {"pca", "umap", "tsne"}
    n_components : int, optional
    standardize : bool, optional
        Scale each input dimension to zero mean and unit variance first.
    fit_size : int, optional
        Fit on at most this many randomly chosen objects (default: all, up to
        :data:`DEFAULT_FIT_SIZE`).
    metric : {"euclidean", "cosine"}, optional
        Distance between input vectors for UMAP and t-SNE (PCA is Euclidean only).
        ``"cosine"`` suits contrastive latents, which their loss compares by angle.
    n_neighbors : int, optional
        UMAP's neighbourhood size.
    min_dist : float, optional
        UMAP's minimum distance between embedded points.
    perplexity : float, optional
        t-SNE's perplexity (lowered to (n - 1) / 3 for tiny sets).
    random_state : int, numpy.random.Generator or None, optional
    chunk_size : int, optional
        Objects placed by ``transform`` at a time (bounds the memory of placing millions).

    Attributes
    ----------
    estimator_ : sklearn.decomposition.PCA, umap.UMAP or sklearn.manifold.TSNE
    explained_variance_ratio_ : numpy.ndarray of shape (n_components,)
        PCA only: the share of the (standardised) variance each component holds.
    fit_indices_ : numpy.ndarray
        Rows of the fitted data used for the fit.
    embedding_ : numpy.ndarray of shape (n, n_components)
        Embedding of all fitted objects.
    scaler_ : sklearn.preprocessing.StandardScaler or None
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(100, 1)) * [[3.0, 1.0, 0.5]] + rng.normal(0, 0.01, (100, 3))
    >>> r = Reducer("pca", n_components=2, standardize=False).fit(x)
    >>> bool(r.explained_variance_ratio_[0] > 0.99)
    True
    """

    def __init__(
        self,
        method="pca",
        *,
        n_components=2,
        standardize=True,
        fit_size=None,
        metric="euclidean",
        n_neighbors=15,
        min_dist=0.1,
        perplexity=30.0,
        random_state=None,
        chunk_size=65_536,
    ):
        self.method = method
        self.n_components = n_components
        self.standardize = standardize
        self.fit_size = fit_size
        self.metric = metric
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.perplexity = perplexity
        self.random_state = random_state
        self.chunk_size = chunk_size

    def fit(self, X, y=None):
        """Fit on ``X`` of shape (n, n_features); ``y`` is ignored. Returns ``self``."""
        self._fit(X)
        return self

    def fit_transform(self, X, y=None):
        """Fit on ``X`` and return its embedding, shape (n, n_components)."""
        return self._fit(X)

    def _fit(self, X):
        name = type(self).__name__
        check_choice(name, "method", self.method, REDUCERS)
        check_int(name, "n_components", self.n_components, 1)
        check_choice(name, "metric", self.metric, REDUCER_METRICS)
        if self.method == "pca" and self.metric != "euclidean":
            msg = f"{name}: PCA is Euclidean; metric={self.metric!r} needs 'umap' or 'tsne'"
            raise ValueError(msg)
        if self.fit_size is not None:
            check_int(name, "fit_size", self.fit_size, 2)
        check_int(name, "chunk_size", self.chunk_size, 1)
        X = validate_data(self, X, dtype=[np.float64, np.float32])
        n, d = X.shape
        if self.method == "pca" and self.n_components > min(n, d):
            msg = (
                f"{name}: n_components={self.n_components} exceeds min(n_objects, "
                f"n_features) = {min(n, d)}"
            )
            raise ValueError(msg)
        if self.method == "tsne" and (n > TSNE_MAX_OBJECTS or self.fit_size is not None):
            msg = (
                f"{name}: t-SNE cannot place objects it was not fitted on; it takes at "
                f"most {TSNE_MAX_OBJECTS} objects without fit_size (got {n}); use "
                "method='umap' or 'pca' for large sets"
            )
            raise ValueError(msg)
        seed = as_rng_seed(self.random_state)
        rng = np.random.default_rng(seed)
        fit_size = self.fit_size
        if fit_size is None and self.method != "tsne":
            fit_size = DEFAULT_FIT_SIZE
        if fit_size is not None and fit_size < n:
            idx = np.sort(rng.choice(n, fit_size, replace=False))
        else:
            idx = np.arange(n)
        self.scaler_, Z_fit = fit_scaler(X[idx], self.standardize)
        est = self._make_estimator(len(idx), seed)
        fitted = est.fit_transform(Z_fit)
        self.estimator_ = est
        self.fit_indices_ = idx
        if self.method == "pca":
            self.explained_variance_ratio_ = est.explained_variance_ratio_
        if len(idx) == n:
            embedding = fitted
        else:
            embedding = np.empty((n, fitted.shape[1]), dtype=fitted.dtype)
            embedding[idx] = fitted
            rest = np.setdiff1d(np.arange(n), idx)
            for lo in range(0, len(rest), self.chunk_size):
                rows = rest[lo : lo + self.chunk_size]
                embedding[rows] = self._place(X[rows])
        self.embedding_ = embedding
        return embedding

    def _make_estimator(self, n, seed):
        if self.method == "pca":
            from sklearn.decomposition import PCA

            return PCA(self.n_components, random_state=seed)
        if self.method == "tsne":
            from sklearn.manifold import TSNE

            perplexity = min(float(self.perplexity), max((n - 1) / 3.0, 1.0))
            return TSNE(
                self.n_components, perplexity=perplexity, metric=self.metric, random_state=seed
            )
        with warnings.catch_warnings():
            # umap announces at import that its optional TensorFlow part is unavailable.
            warnings.simplefilter("ignore", ImportWarning)
            import umap

        return umap.UMAP(
            n_components=self.n_components,
            n_neighbors=min(self.n_neighbors, n - 1),
            min_dist=self.min_dist,
            metric=self.metric,
            random_state=seed,
            n_jobs=1 if seed is not None else -1,
        )

    def transform(self, X):
        """Embedding of new objects ``X`` (n, n_features) -> (n, n_components).

        Raises
        ------
        ValueError
            For t-SNE, which cannot place new objects.
        """
        check_is_fitted(self)
        if self.method == "tsne":
            msg = "Reducer: t-SNE cannot transform new objects; use fit_transform or embedding_"
            raise ValueError(msg)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        parts = [
            self._place(X[lo : lo + self.chunk_size]) for lo in range(0, len(X), self.chunk_size)
        ]
        return np.concatenate(parts)

    def _place(self, X):
        Z = self.scaler_.transform(X) if self.scaler_ is not None else X
        return self.estimator_.transform(Z)
