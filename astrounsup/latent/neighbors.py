"""Similarity search: "more like this" over latent vectors."""

from __future__ import annotations

import numpy as np
from astropy.table import QTable
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted, validate_data

from astrounsup._estimators import check_choice, check_int, fit_scaler

__all__ = ["SimilaritySearch"]

#: Search engines of :class:`SimilaritySearch`.
_BACKENDS = ("sklearn", "faiss")


def _faiss(owner):
    """The faiss module, or a one-line error saying how to install it."""
    try:
        import faiss
    except ImportError:
        msg = (
            f"{owner}: backend 'faiss' needs the faiss package, which is not installed; "
            "pip install 'astrounsup[scale]' (or faiss-cpu, or faiss-gpu where CUDA is)"
        )
        raise ValueError(msg) from None
    return faiss


class SimilaritySearch(BaseEstimator):
    """A k-nearest-neighbour index over latent vectors, queried by object or by vector.

    Parameters
    ----------
    n_neighbors : int, optional
        Neighbours returned by default.
    metric : {"euclidean", "cosine"}, optional
        ``cosine`` compares directions only (contrastive latents); it is computed as the
        Euclidean distance of unit vectors, ``sqrt(2 - 2 cos)``.
    standardize : bool, optional
        Scale each latent dimension to unit variance first.
    algorithm : {"auto", "brute", "kd_tree", "ball_tree"}, optional
        scikit-learn's search structure (``backend="sklearn"``).
    backend : {"sklearn", "faiss"}, optional
        ``"faiss"``: an exact flat index of faiss (the ``scale`` extra, ``faiss-cpu``), in
        float32, for millions of vectors; the same neighbours as scikit-learn's exact
        search, distances to float32 precision.

    Attributes
    ----------
    ids_ : numpy.ndarray of shape (n,)
        Object ids given to :meth:`fit` (default: row numbers).
    index_ : sklearn.neighbors.NearestNeighbors or faiss.IndexFlatL2
    vectors_ : numpy.ndarray of shape (n, n_features)
        The indexed vectors (scaled / normalised as searched).
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(100, 8))
    >>> search = SimilaritySearch(n_neighbors=3).fit(z, ids=[f"obj{i}" for i in range(100)])
    >>> t = search.query_ids(["obj7"])
    >>> len(t), "obj7" in t["neighbor_id"]
    (3, False)
    """

    def __init__(
        self, *, n_neighbors=10, metric="euclidean", standardize=False, algorithm="auto",
        backend="sklearn",
    ):  # fmt: skip
        self.n_neighbors = n_neighbors
        self.metric = metric
        self.standardize = standardize
        self.algorithm = algorithm
        self.backend = backend

    def fit(self, X, y=None, *, ids=None):
        """Index ``X`` of shape (n, n_features), with optional ``ids`` (n,). Returns self."""
        from sklearn.neighbors import NearestNeighbors

        name = type(self).__name__
        check_int(name, "n_neighbors", self.n_neighbors, 1)
        check_choice(name, "metric", self.metric, ("euclidean", "cosine"))
        check_choice(name, "algorithm", self.algorithm, ("auto", "brute", "kd_tree", "ball_tree"))
        check_choice(name, "backend", self.backend, _BACKENDS)
        faiss = _faiss(name) if self.backend == "faiss" else None
        X = validate_data(self, X, dtype=[np.float32, np.float64])
        if ids is None:
            ids = np.arange(len(X))
        ids = np.asarray(ids)
        if ids.shape != (len(X),):
            msg = f"{name}: ids must have one entry per row of X ({len(X)}); got {ids.shape}"
            raise ValueError(msg)
        if len(np.unique(ids)) != len(ids):
            msg = f"{name}: ids must be unique"
            raise ValueError(msg)
        self.scaler_, Z = fit_scaler(X, self.standardize)
        Z = self._unit(Z)
        if faiss is None:
            self.index_ = NearestNeighbors(algorithm=self.algorithm).fit(Z)
        else:
            self.index_ = faiss.IndexFlatL2(Z.shape[1])
            self.index_.add(np.ascontiguousarray(Z, dtype=np.float32))
        self.vectors_ = Z
        self.ids_ = ids
        self._order = np.argsort(ids, kind="stable")
        return self

    def _unit(self, Z):
        if self.metric != "cosine":
            return Z
        norm = np.linalg.norm(Z, axis=1, keepdims=True)
        return Z / np.where(norm > 0, norm, 1.0)

    def _prepare(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float32, np.float64], reset=False)
        Z = self.scaler_.transform(X) if self.scaler_ is not None else X
        return self._unit(Z)

    def kneighbors(self, X, *, n_neighbors=None):
        """Distances and row indices of the nearest indexed objects to each row of ``X``.

        Returns
        -------
        distances, indices : numpy.ndarray of shape (m, n_neighbors)
        """
        k = self._k(n_neighbors)
        return self._search(self._prepare(X), k)

    def _search(self, Z, k):
        if self.backend == "sklearn":
            return self.index_.kneighbors(Z, n_neighbors=k)
        squared, idx = self.index_.search(np.ascontiguousarray(Z, dtype=np.float32), k)
        return np.sqrt(np.maximum(squared, 0)).astype(np.float64), idx.astype(np.int64)

    def _k(self, n_neighbors, extra=0):
        k = self.n_neighbors if n_neighbors is None else n_neighbors
        check_int(type(self).__name__, "n_neighbors", k, 1)
        n = len(self.ids_) - extra
        if k > n:
            msg = f"n_neighbors={k} exceeds the {n} indexed objects that can be returned"
            raise ValueError(msg)
        return k

    def query(self, X, *, n_neighbors=None, query_ids=None):
        """The nearest objects to each latent vector of ``X`` (m, n_features), as a table.

        Returns
        -------
        astropy.table.QTable
            ``query`` (row of ``X``, or ``query_ids``), ``rank`` (1 = nearest),
            ``neighbor_id``, ``neighbor_row`` and ``distance`` (in the index's units).
        """
        dist, idx = self.kneighbors(X, n_neighbors=n_neighbors)
        return self._table(dist, idx, query_ids)

    def query_ids(self, ids, *, n_neighbors=None):
        """The nearest other objects to indexed objects given by id (the object itself
        is left out).

        Raises
        ------
        KeyError
            Naming the ids that are not indexed.
        """
        check_is_fitted(self)
        ids = np.atleast_1d(np.asarray(ids, dtype=self.ids_.dtype))
        pos = np.searchsorted(self.ids_[self._order], ids)
        pos = np.clip(pos, 0, len(self.ids_) - 1)
        rows = self._order[pos]
        missing = ids[self.ids_[rows] != ids]
        if len(missing):
            msg = f"ids not in the index: {missing[:10].tolist()}"
            raise KeyError(msg)
        k = self._k(n_neighbors, extra=1)
        Z = self.vectors_[rows]
        dist, idx = self._search(Z, k + 1)
        keep = idx != rows[:, None]
        # The object itself is normally first; with exact duplicates it may not be, so
        # drop it wherever it is and keep k of the rest.
        dist = np.stack([d[m][:k] for d, m in zip(dist, keep, strict=True)])
        idx = np.stack([i[m][:k] for i, m in zip(idx, keep, strict=True)])
        return self._table(dist, idx, ids)

    def _table(self, dist, idx, query_ids):
        m, k = idx.shape
        q = np.arange(m) if query_ids is None else np.asarray(query_ids)
        return QTable(
            {
                "query": np.repeat(q, k),
                "rank": np.tile(np.arange(1, k + 1), m),
                "neighbor_id": self.ids_[idx.ravel()],
                "neighbor_row": idx.ravel(),
                "distance": dist.ravel(),
            }
        )
