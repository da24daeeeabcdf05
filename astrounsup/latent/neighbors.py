"""Similarity search: "more like this" over latent vectors."""

from __future__ import annotations

import warnings

import numpy as np
from astropy.table import QTable
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted, validate_data

from astrounsup._estimators import as_rng_seed, check_choice, check_int, fit_scaler
from astrounsup.latent._faiss import build_index, faiss_module, ivf_of, tune_n_probe

__all__ = ["SimilaritySearch"]

#: Search engines of :class:`SimilaritySearch`.
_BACKENDS = ("sklearn", "faiss")
#: Its faiss indexes: exact, and inverted lists of product-quantised codes.
_INDEXES = ("flat", "ivfpq")


def _seed(random_state):
    seed = as_rng_seed(random_state)
    return int(np.random.default_rng().integers(2**31)) if seed is None else int(seed)


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
        ``"faiss"``: a faiss index (the ``scale`` extra, ``faiss-cpu``), in float32, for
        millions of vectors.
    index : {"flat", "ivfpq"}, optional
        The faiss index. ``"flat"``: exact, the same neighbours as scikit-learn's exact
        search (distances to float32 precision). ``"ivfpq"``: approximate, for 10^7 and
        more: the vectors are filed in ``n_lists`` inverted lists by a coarse k-means and
        stored as product-quantised codes (``n_subquantizers`` bytes each); a query
        searches the ``n_probe`` nearest lists and, with ``refine``, re-ranks its
        ``refine * k`` best candidates by exact distance.
    n_lists : int, optional
        IVF lists (default about ``4 sqrt(n)``).
    n_subquantizers : int, optional
        PQ sub-vectors, a divisor of the dimension (default: the largest up to half of it).
    n_probe : int or "auto", optional
        Lists searched per query. ``"auto"``: the smallest power of two whose recall@k
        (``k = n_neighbors``), measured at :meth:`fit` on ``n_tune`` indexed objects chosen at
        random against exact search, reaches ``target_recall`` (``recall_`` holds it).
    target_recall : float, optional
        The recall ``n_probe="auto"`` is tuned to, in (0, 1].
    n_tune : int, optional
        Objects the recall is measured on.
    refine : float or None, optional
        Candidates re-ranked exactly, as a multiple of k (None: the PQ distances as they
        are, with less memory: the vectors are not kept by the index).
    train_size : int, optional
        Vectors the IVF-PQ quantisers are trained on (randomly chosen).
    random_state : int, numpy.random.Generator or None, optional
        Seeds the choice of training vectors and faiss's k-means.

    Attributes
    ----------
    ids_ : numpy.ndarray of shape (n,)
        Object ids given to :meth:`fit` (default: row numbers).
    index_ : sklearn.neighbors.NearestNeighbors or faiss.Index
    n_probe_ : int
        IVF-PQ only: the lists searched per query.
    recall_ : float
        IVF-PQ with ``n_probe="auto"``: the recall@k measured when tuning it.
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
        backend="sklearn", index="flat", n_lists=None, n_subquantizers=None,
        n_probe="auto", target_recall=0.95, n_tune=200, refine=4.0, train_size=100_000,
        random_state=0,
    ):  # fmt: skip
        self.n_neighbors = n_neighbors
        self.metric = metric
        self.standardize = standardize
        self.algorithm = algorithm
        self.backend = backend
        self.index = index
        self.n_lists = n_lists
        self.n_subquantizers = n_subquantizers
        self.n_probe = n_probe
        self.target_recall = target_recall
        self.n_tune = n_tune
        self.refine = refine
        self.train_size = train_size
        self.random_state = random_state

    def fit(self, X, y=None, *, ids=None):
        """Index ``X`` of shape (n, n_features), with optional ``ids`` (n,). Returns self."""
        from sklearn.neighbors import NearestNeighbors

        name = type(self).__name__
        check_int(name, "n_neighbors", self.n_neighbors, 1)
        check_choice(name, "metric", self.metric, ("euclidean", "cosine"))
        check_choice(name, "algorithm", self.algorithm, ("auto", "brute", "kd_tree", "ball_tree"))
        check_choice(name, "backend", self.backend, _BACKENDS)
        check_choice(name, "index", self.index, _INDEXES)
        if self.index != "flat" and self.backend != "faiss":
            msg = f"{name}: index={self.index!r} is a faiss index; it needs backend='faiss'"
            raise ValueError(msg)
        for key, low in (("n_lists", 1), ("n_subquantizers", 1)):
            if getattr(self, key) is not None:
                check_int(name, key, getattr(self, key), low)
        if self.n_probe != "auto":
            check_int(name, "n_probe", self.n_probe, 1)
        check_int(name, "n_tune", self.n_tune, 1)
        if not (isinstance(self.target_recall, (int, float)) and 0 < self.target_recall <= 1):
            msg = f"{name}: target_recall must be in (0, 1]; got {self.target_recall!r}"
            raise ValueError(msg)
        check_int(name, "train_size", self.train_size, 1)
        if self.refine is not None and (
            isinstance(self.refine, bool) or not isinstance(self.refine, (int, float))
            or not self.refine >= 1
        ):  # fmt: skip
            msg = f"{name}: refine must be a number >= 1 or None; got {self.refine!r}"
            raise ValueError(msg)
        if self.backend == "faiss":
            faiss_module(name)
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
        if self.backend == "sklearn":
            self.index_ = NearestNeighbors(algorithm=self.algorithm).fit(Z)
        else:
            self.index_ = build_index(
                Z, kind=self.index, n_lists=self.n_lists, n_subquantizers=self.n_subquantizers,
                n_probe=self.n_probe, refine=self.refine, train_size=self.train_size,
                seed=_seed(self.random_state), owner=name,
            )  # fmt: skip
            if self.index == "ivfpq":
                self._tune(Z)
        self.vectors_ = Z
        self.ids_ = ids
        self._order = np.argsort(ids, kind="stable")
        return self

    def _tune(self, Z):

        if self.n_probe == "auto":
            k = min(self.n_neighbors, len(Z) - 1)
            self.n_probe_, self.recall_ = tune_n_probe(
                self.index_, Z, k=max(k, 1), target=self.target_recall, n_queries=self.n_tune,
                seed=_seed(self.random_state) + 1,
            )  # fmt: skip
            if self.recall_ < self.target_recall:
                warnings.warn(
                    f"{type(self).__name__}: IVF-PQ reaches recall@{k} {self.recall_:.3f}, "
                    f"below target_recall {self.target_recall}, even searching all "
                    f"{self.n_probe_} lists; use refine (exact re-ranking) or more "
                    "n_subquantizers",
                    UserWarning,
                    stacklevel=3,
                )
        else:
            self.n_probe_ = int(ivf_of(self.index_).nprobe)

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
        if (idx < 0).any():  # an approximate index found fewer than k in its lists
            msg = (
                f"{type(self).__name__}: the {self.index} index found fewer than {k} "
                f"neighbours in the n_probe={self.n_probe_} lists it searched; raise n_probe"
            )
            raise ValueError(msg)
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
