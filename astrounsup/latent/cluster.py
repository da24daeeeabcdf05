"""Clustering latent vectors: k-means, Gaussian mixtures and HDBSCAN behind one interface."""

from __future__ import annotations

import numpy as np
from astropy.table import QTable
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, validate_data

from astrounsup._estimators import as_rng_seed, check_choice, check_int, fit_scaler
from astrounsup.latent._faiss import FaissKMeans, faiss_module
from astrounsup.latent.reduce import Reducer

__all__ = ["DEFAULT_N_CLUSTERS", "METHODS", "REDUCE_COMPONENTS", "LatentClusterer", "choose_k"]

#: Clusters of :class:`LatentClusterer` and of the pipeline's cluster step by default: more
#: than the kinds of object in a survey, so that a rare kind can have a cluster of its own.
DEFAULT_N_CLUSTERS = 20

#: Clustering methods of :class:`LatentClusterer` (and ``astrounsup cluster --method``).
METHODS = ("kmeans", "minibatch-kmeans", "gmm", "bayes-gmm", "hdbscan")

#: Reductions :class:`LatentClusterer` can cluster on, with their default dimensions:
#: 12 principal components hold 99.5% of the variance of SimCLR latents, which are nearly
#: low-rank, and give the weaker directions that tell lenses from look-alikes equal weight
#: once standardised; 5 UMAP dimensions keep the groups a 2-D map would merge.
REDUCE_COMPONENTS = {"pca": 12, "umap": 5}

_MIXTURES = ("gmm", "bayes-gmm")
_COVARIANCES = ("full", "diag", "tied", "spherical")


class LatentClusterer(ClusterMixin, BaseEstimator):
    """Cluster latent vectors with one of :data:`METHODS`.

    The features are standardised (zero mean, unit variance per dimension) first unless
    ``standardize=False``, so no latent dimension dominates by its scale alone. With
    ``reduce``, the latents are first reduced (:class:`astrounsup.latent.Reducer`, without
    standardisation) and the reduced features are clustered: ``reduce="pca"`` with its 12
    standardised components is the recipe for contrastive (SimCLR) latents.

    Parameters
    ----------
    method : {"kmeans", "minibatch-kmeans", "gmm", "bayes-gmm", "hdbscan"}
        ``kmeans``: Lloyd's k-means with ``n_init`` starts; ``minibatch-kmeans`` for
        millions of objects; ``gmm``: Gaussian mixture; ``bayes-gmm``: Bayesian Gaussian
        mixture with a Dirichlet-process prior, which switches off components it does not
        need (the method of Cheng et al. 2020, MNRAS 494, 3750); ``hdbscan``: density-based
        clusters of any shape, with noise labeled -1.
    n_clusters : int, optional
        k for k-means, the number of mixture components (an upper bound for ``bayes-gmm``).
        Ignored by ``hdbscan``.
    standardize : bool, optional
    covariance_type : {"full", "diag", "tied", "spherical"}, optional
        Mixtures only.
    n_init : int, optional
        Starts of k-means and the mixtures; the best is kept.
    min_cluster_size : int, optional
        HDBSCAN's smallest cluster.
    batch_size : int, optional
        Mini-batch k-means batch size.
    max_iter : int, optional
        Iterations of k-means / EM.
    reduce : {None, "pca", "umap"}, optional
        Cluster a reduction of the latents instead of the latents.
    n_components : int, optional
        Dimensions of the reduction; default :data:`REDUCE_COMPONENTS` (12 for PCA, 5 for
        UMAP).
    metric : {"euclidean", "cosine"}, optional
        UMAP's distance between latent vectors.
    fit_size : int, optional
        Fit the reduction on this many randomly chosen objects and place the rest.
        ``n_components``, ``metric`` and ``fit_size`` set the reduction; without
        ``reduce`` they are not used.
    random_state : int, numpy.random.Generator or None, optional
        Seeds the reduction and the clustering.
    backend : {"sklearn", "faiss"}, optional
        k-means only: ``"faiss"`` runs Lloyd's algorithm in faiss (the ``scale`` extra),
        in float32, for millions of objects; the same partition as scikit-learn's on data
        whose clusters are clear.
    kmeans_fit_size : int, optional
        k-means only: fit the centres on this many randomly chosen objects, then assign
        every object to its nearest centre in chunks of ``chunk_size``. ``X`` may then be
        anything sliced by rows, such as the ``/latents`` dataset of an open latents file,
        which is read a chunk at a time (without ``reduce``).
    chunk_size : int, optional
        Objects assigned at a time.

    Attributes
    ----------
    labels_ : numpy.ndarray of shape (n,), int
        Cluster of each fitted object (-1: HDBSCAN noise).
    n_iter_ : int
        Iterations the fit ran (1 for HDBSCAN, which does not iterate).
    n_clusters_ : int
        Clusters found (components with weight > 1e-3 for ``bayes-gmm``).
    estimator_ : sklearn estimator
        The fitted scikit-learn clusterer.
    reducer_ : astrounsup.latent.Reducer or None
        The fitted reduction (its ``embedding_`` holds the clustered features).
    scaler_ : sklearn.preprocessing.StandardScaler or None
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = np.concatenate([rng.normal(0, 1, (50, 4)), rng.normal(8, 1, (50, 4))])
    >>> c = LatentClusterer("kmeans", n_clusters=2, random_state=0).fit(x)
    >>> sorted(np.bincount(c.labels_).tolist())
    [50, 50]
    >>> c = LatentClusterer(n_clusters=2, reduce="pca", n_components=2, random_state=0).fit(x)
    >>> sorted(np.bincount(c.labels_).tolist()), c.reducer_.embedding_.shape
    ([50, 50], (100, 2))
    """

    def __init__(
        self,
        method="kmeans",
        *,
        n_clusters=DEFAULT_N_CLUSTERS,
        standardize=True,
        covariance_type="full",
        n_init=4,
        min_cluster_size=25,
        batch_size=4096,
        max_iter=300,
        reduce=None,
        n_components=None,
        metric="euclidean",
        fit_size=None,
        random_state=None,
        backend="sklearn",
        kmeans_fit_size=None,
        chunk_size=65_536,
    ):
        self.method = method
        self.n_clusters = n_clusters
        self.standardize = standardize
        self.covariance_type = covariance_type
        self.n_init = n_init
        self.min_cluster_size = min_cluster_size
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.reduce = reduce
        self.n_components = n_components
        self.metric = metric
        self.fit_size = fit_size
        self.random_state = random_state
        self.backend = backend
        self.kmeans_fit_size = kmeans_fit_size
        self.chunk_size = chunk_size

    def _make_estimator(self, n_samples, seed):
        from sklearn import cluster, mixture

        needs_k = self.method != "hdbscan"
        if needs_k and n_samples < self.n_clusters:
            msg = (
                f"n_clusters={self.n_clusters} needs at least as many objects; "
                f"got {n_samples} (lower n_clusters)"
            )
            raise ValueError(msg)
        if self.method == "kmeans" and self.backend == "faiss":
            if seed is None:
                seed = int(np.random.default_rng().integers(2**31))
            return FaissKMeans(
                self.n_clusters, n_init=self.n_init, max_iter=self.max_iter, seed=seed
            )
        if self.method == "kmeans":
            return cluster.KMeans(
                self.n_clusters, n_init=self.n_init, max_iter=self.max_iter, random_state=seed
            )
        if self.method == "minibatch-kmeans":
            return cluster.MiniBatchKMeans(
                self.n_clusters,
                n_init=self.n_init,
                batch_size=self.batch_size,
                max_iter=self.max_iter,
                random_state=seed,
            )
        if self.method == "gmm":
            return mixture.GaussianMixture(
                self.n_clusters,
                covariance_type=self.covariance_type,
                n_init=self.n_init,
                max_iter=self.max_iter,
                reg_covar=1e-4,
                random_state=seed,
            )
        if self.method == "bayes-gmm":
            return mixture.BayesianGaussianMixture(
                n_components=self.n_clusters,
                covariance_type=self.covariance_type,
                weight_concentration_prior_type="dirichlet_process",
                n_init=self.n_init,
                max_iter=self.max_iter,
                reg_covar=1e-4,
                random_state=seed,
            )
        return cluster.HDBSCAN(
            min_cluster_size=min(self.min_cluster_size, max(n_samples, 2)), copy=True
        )

    def _check_params(self):
        name = type(self).__name__
        check_choice(name, "method", self.method, METHODS)
        check_int(name, "n_clusters", self.n_clusters, 1)
        check_choice(name, "covariance_type", self.covariance_type, _COVARIANCES)
        check_int(name, "n_init", self.n_init, 1)
        check_int(name, "min_cluster_size", self.min_cluster_size, 2)
        check_int(name, "batch_size", self.batch_size, 1)
        check_int(name, "max_iter", self.max_iter, 1)
        if self.reduce is not None:
            check_choice(name, "reduce", self.reduce, tuple(REDUCE_COMPONENTS))
            if self.n_components is not None:
                check_int(name, "n_components", self.n_components, 1)
        check_choice(name, "backend", self.backend, ("sklearn", "faiss"))
        check_int(name, "chunk_size", self.chunk_size, 1)
        kmeans = ("kmeans", "minibatch-kmeans")
        if self.backend == "faiss" and self.method != "kmeans":
            msg = (
                f"{name}: backend='faiss' runs k-means; it needs method='kmeans', not "
                f"{self.method!r}"
            )
            raise ValueError(msg)
        if self.kmeans_fit_size is not None:
            check_int(name, "kmeans_fit_size", self.kmeans_fit_size, 1)
            if self.method not in kmeans:
                msg = f"{name}: kmeans_fit_size is for k-means; method is {self.method!r}"
                raise ValueError(msg)
        if self.backend == "faiss":
            faiss_module(name)

    def _reduction(self, X, seed):
        """The fitted reducer and the features it gives ``X`` (or None and ``X``)."""
        if self.reduce is None:
            return None, X

        n_components = self.n_components or REDUCE_COMPONENTS[self.reduce]
        # No standardisation before the reduction (PCA keeps the latents' own variance
        # ranking); UMAP with min_dist 0 packs each group tightly, as clustering wants.
        reducer = Reducer(
            self.reduce, n_components=n_components, metric=self.metric, standardize=False,
            fit_size=self.fit_size, min_dist=0.0, random_state=seed,
        )  # fmt: skip
        return reducer, reducer.fit_transform(X)

    def fit(self, X, y=None):
        """Cluster ``X`` of shape (n, n_features); ``y`` is ignored. Returns ``self``."""
        self._check_params()
        if self.kmeans_fit_size is not None and self.reduce is None:
            return self._fit_sample(X)
        X = validate_data(self, X, dtype=[np.float64, np.float32])
        seed = as_rng_seed(self.random_state)
        self.reducer_, features = self._reduction(X, seed)
        self.scaler_, Z = fit_scaler(features, self.standardize)
        if self.kmeans_fit_size is not None and self.kmeans_fit_size < len(Z):
            rows = np.sort(np.random.default_rng(seed).choice(len(Z), self.kmeans_fit_size,
                                                              replace=False))  # fmt: skip
            est = self._make_estimator(len(rows), seed)
            self._fit_estimator(est, Z[rows])
            self.labels_ = _predict_chunks(est, Z, self.chunk_size)
            self._finish(est)
            return self
        est = self._make_estimator(len(X), seed)
        # The mixtures' fit_predict labels the last EM step's responsibilities, which can
        # differ from predict() after it; predict() keeps labels_ == predict(X).
        if self.backend == "faiss":
            labels = self._fit_estimator(est, Z).predict(Z)
        elif self.method in _MIXTURES:
            labels = est.fit(Z).predict(Z)
        else:
            labels = est.fit_predict(Z)
        self.labels_ = np.asarray(labels, dtype=np.intp)
        self._finish(est)
        if self.method == "hdbscan":
            from sklearn.neighbors import NearestNeighbors

            # New objects take the cluster of their nearest fitted object: index once.
            self._nearest = NearestNeighbors(n_neighbors=1).fit(Z)
        return self

    def _fit_estimator(self, est, Z):
        return est.fit(Z, type(self).__name__) if isinstance(est, FaissKMeans) else est.fit(Z)

    def _fit_sample(self, X):
        """k-means on ``kmeans_fit_size`` objects of ``X`` (an array or any row-sliced
        array-like, read a chunk at a time), then every object assigned in chunks."""
        name = type(self).__name__
        shape = getattr(X, "shape", None)
        if shape is None or len(shape) != 2:
            X = validate_data(self, X, dtype=[np.float64, np.float32])
            shape = X.shape
        n, d = int(shape[0]), int(shape[1])
        self.n_features_in_ = d
        seed = as_rng_seed(self.random_state)
        m = min(n, self.kmeans_fit_size)
        rows = np.sort(np.random.default_rng(seed).choice(n, m, replace=False))
        sample = _finite(name, X[rows] if m < n else X[:], rows)
        self.reducer_ = None
        self.scaler_, Zs = fit_scaler(sample, self.standardize)
        est = self._make_estimator(m, seed)
        self._fit_estimator(est, Zs)
        labels = np.empty(n, dtype=np.intp)
        for lo in range(0, n, self.chunk_size):
            chunk = _finite(name, X[lo : lo + self.chunk_size], np.arange(lo, n))
            if self.scaler_ is not None:
                chunk = self.scaler_.transform(chunk)
            labels[lo : lo + len(chunk)] = est.predict(chunk)
        self.labels_ = labels
        self._finish(est)
        return self

    def _finish(self, est):
        self.estimator_ = est
        self.n_iter_ = int(getattr(est, "n_iter_", 1))  # HDBSCAN: one pass
        if self.method == "bayes-gmm":
            self.n_clusters_ = int(np.sum(est.weights_ > 1e-3))
        elif self.method == "hdbscan":
            self.n_clusters_ = int(self.labels_.max() + 1) if len(self.labels_) else 0
        else:
            self.n_clusters_ = int(self.n_clusters)

    def _scaled(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        if self.reducer_ is not None:
            X = self.reducer_.transform(X)
        return self.scaler_.transform(X) if self.scaler_ is not None else X

    def predict(self, X):
        """Cluster of each row of ``X`` (HDBSCAN: the cluster of the nearest fitted object).

        Returns
        -------
        numpy.ndarray of shape (n,), int
        """
        Z = self._scaled(X)
        if self.method == "hdbscan":
            return self.labels_[self._nearest.kneighbors(Z, return_distance=False)[:, 0]]
        return _predict_chunks(self.estimator_, Z, self.chunk_size)

    def _has_proba(self):
        return self.method != "hdbscan"

    @available_if(_has_proba)
    def predict_proba(self, X):
        """Cluster membership probabilities, shape (n, n_clusters).

        Responsibilities for the mixtures; one-hot rows for k-means.
        """
        Z = self._scaled(X)
        if self.method in _MIXTURES:
            return self.estimator_.predict_proba(Z)
        labels = self.estimator_.predict(Z)
        out = np.zeros((len(Z), self.n_clusters), dtype=np.float64)
        out[np.arange(len(Z)), labels] = 1.0
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags


def _predict_chunks(est, Z, size):
    out = np.empty(len(Z), dtype=np.intp)
    for lo in range(0, len(Z), size):
        out[lo : lo + size] = est.predict(Z[lo : lo + size])
    return out


def _finite(name, values, rows):
    """``values`` (rows ``rows`` of X) as a finite float array, or a one-line error naming
    the first bad row."""
    values = np.asarray(values)
    if values.dtype not in (np.float32, np.float64):
        values = values.astype(np.float64)
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        msg = f"{name}: X has non-finite values (first at row {int(rows[np.argmax(bad)])})"
        raise ValueError(msg)
    return values


def choose_k(X, k_values=range(2, 31), *, sample_size=5000, standardize=True, random_state=None):
    """Inertia and silhouette of k-means for each k, to choose the number of clusters.

    Parameters
    ----------
    X : array_like of shape (n, n_features)
    k_values : iterable of int, optional
        Candidate k (each >= 2).
    sample_size : int, optional
        The silhouette (quadratic in n) is computed on this many randomly chosen objects.
    standardize : bool, optional
    random_state : int, numpy.random.Generator or None, optional

    Returns
    -------
    astropy.table.QTable
        Columns ``k``, ``inertia`` (sum of squared distances to the centres, standardised
        units) and ``silhouette`` (in [-1, 1], higher is better). ``meta["k_silhouette"]``
        is the k of the best silhouette; ``meta["k_elbow"]`` the k farthest below the line
        joining the first and last points of the normalised inertia curve.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> centres = rng.normal(0, 10, (4, 3))
    >>> x = np.concatenate([c + rng.normal(0, 0.5, (40, 3)) for c in centres])
    >>> choose_k(x, range(2, 8), random_state=0).meta["k_silhouette"]
    4
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or not np.isfinite(X).all():
        msg = f"X must be a finite 2-D array (n, n_features); got shape {X.shape}"
        raise ValueError(msg)
    ks = [int(k) for k in k_values]
    if not ks or min(ks) < 2 or max(ks) >= len(X):
        msg = f"k_values must lie in [2, {len(X) - 1}] (n - 1); got {ks}"
        raise ValueError(msg)
    if sample_size < 2:
        msg = f"sample_size must be >= 2; got {sample_size}"
        raise ValueError(msg)
    _, Z = fit_scaler(X, standardize)
    seed = as_rng_seed(random_state)
    rng = np.random.default_rng(seed)
    sample = rng.choice(len(Z), min(sample_size, len(Z)), replace=False)
    inertia, silhouette = [], []
    for k in ks:
        km = KMeans(k, n_init=2, random_state=seed).fit(Z)
        inertia.append(km.inertia_)
        labels = km.labels_[sample]
        ok = len(np.unique(labels)) > 1
        silhouette.append(silhouette_score(Z[sample], labels) if ok else np.nan)
    inertia, silhouette = np.array(inertia), np.array(silhouette)
    table = QTable({"k": ks, "inertia": inertia, "silhouette": silhouette})
    table.meta["k_silhouette"] = int(ks[int(np.nanargmax(silhouette))])
    table.meta["k_elbow"] = _elbow(np.array(ks, float), inertia)
    table.meta["sample_size"] = len(sample)
    return table


def _elbow(k, inertia):
    """The k farthest below the chord of the inertia curve (both axes scaled to [0, 1])."""
    if len(k) < 3:
        return int(k[0])
    x = (k - k[0]) / (k[-1] - k[0])
    span = inertia[0] - inertia[-1]
    y = (inertia - inertia[-1]) / span if span > 0 else np.zeros_like(inertia)
    below = (1.0 - x) - y
    return int(k[int(np.argmax(below))])
