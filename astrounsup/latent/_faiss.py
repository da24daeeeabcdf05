"""The faiss engine behind :class:`SimilaritySearch` and :class:`LatentClusterer`:
indexes, k-means, and chunked passes over vectors that need not fit in memory twice."""

from __future__ import annotations

import math

import numpy as np

#: Vectors handled at a time when assigning or adding many.
CHUNK = 65_536


def faiss_module(owner):
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


def as_f32(x):
    return np.ascontiguousarray(x, dtype=np.float32)


def default_lists(n):
    """IVF lists for ``n`` vectors: about ``sqrt(n)``, at least 1 and at most ``n // 39``
    so that every list's centroid is trained on 39 vectors or more."""
    return int(max(1, min(math.isqrt(max(n, 1)), n // 39)))


def default_subquantizers(d):
    """PQ sub-vectors for dimension ``d``: the largest divisor of ``d`` up to ``d / 2``
    (two dimensions per byte-sized code), 1 for ``d = 1``."""
    return max([m for m in range(1, max(1, d // 2) + 1) if d % m == 0])


def build_index(Z, *, kind, n_lists, n_subquantizers, n_probe, refine, train_size, seed, owner):
    """A faiss index over ``Z`` (n, d) float32: ``"flat"`` (exact) or ``"ivfpq"``.

    An IVF-PQ index is trained on at most ``train_size`` randomly chosen vectors (and at
    least 39 per list), then every vector is added in chunks. With ``refine`` (a factor
    >= 1), the index keeps the vectors too and re-ranks ``refine * k`` candidates by their
    exact distances. ``n_probe="auto"`` is set later by :func:`tune_n_probe`.
    """
    faiss = faiss_module(owner)
    n, d = Z.shape
    if kind == "flat":
        index = faiss.IndexFlatL2(d)
    else:
        n_lists = n_lists or default_lists(n)
        m = n_subquantizers or default_subquantizers(d)
        if d % m:
            msg = f"{owner}: n_subquantizers={m} must divide the dimension {d}"
            raise ValueError(msg)
        if n < 256:
            msg = (
                f"{owner}: IVF-PQ needs at least 256 vectors to train its codes; got {n} "
                "(index='flat' searches them exactly)"
            )
            raise ValueError(msg)
        if n < n_lists:
            msg = f"{owner}: n_lists={n_lists} needs at least as many vectors; got {n}"
            raise ValueError(msg)
        quantizer = faiss.IndexFlatL2(d)
        ivf = faiss.IndexIVFPQ(quantizer, d, int(n_lists), int(m), 8)
        ivf.cp.seed = int(seed) % 2**31
        ivf.pq.cp.seed = int(seed) % 2**31
        rng = np.random.default_rng(seed)
        take = min(n, max(int(train_size), int(n_lists) * 39, 256))
        rows = np.sort(rng.choice(n, take, replace=False)) if take < n else slice(None)
        ivf.train(as_f32(Z[rows]))
        ivf.nprobe = 1 if n_probe == "auto" else int(min(n_probe, n_lists))
        index = ivf
        if refine:
            index = faiss.IndexRefineFlat(ivf)
            index.k_factor = float(refine)
    for lo in range(0, n, CHUNK):
        index.add(as_f32(Z[lo : lo + CHUNK]))
    return index


class FaissKMeans:
    """k-means run by faiss, with scikit-learn's ``predict`` and attributes.

    The algorithm is scikit-learn's: each start from k-means++ centres
    (:func:`sklearn.cluster.kmeans_plusplus`), Lloyd iterations (faiss assigns and
    updates) until the centres move by less than ``tol`` times the mean variance of the
    features in total (or ``max_iter``), the start of lowest inertia kept; so the result
    is scikit-learn's for the same seed, up to float32 rounding. The faiss objects are
    rebuilt from ``cluster_centers_`` where needed, so the estimator pickles like a
    scikit-learn one.
    """

    def __init__(self, n_clusters, *, n_init, max_iter, seed, tol=1e-4):
        self.n_clusters, self.n_init, self.max_iter, self.seed = n_clusters, n_init, max_iter, seed
        self.tol = tol

    def fit(self, Z, owner):
        from sklearn.cluster import kmeans_plusplus

        faiss = faiss_module(owner)
        Z = as_f32(Z)
        n, d = Z.shape
        k = int(self.n_clusters)
        tol = float(np.mean(np.var(Z, axis=0, dtype=np.float64))) * self.tol
        # A faiss build with GPUs runs the iterations there (faiss-gpu where CUDA is).
        gpu = bool(getattr(faiss, "get_num_gpus", lambda: 0)())
        rng = np.random.RandomState(int(self.seed) % 2**32)
        best = None
        for _ in range(int(self.n_init)):
            centres = kmeans_plusplus(Z, k, random_state=rng)[0].astype(np.float32)
            iterations = 0
            while iterations < int(self.max_iter):
                iterations += 1
                step = faiss.Kmeans(
                    d, k, niter=1, seed=int(rng.randint(2**31)), max_points_per_centroid=n + 1,
                    min_points_per_centroid=1, gpu=gpu,
                )  # fmt: skip
                step.train(Z, init_centroids=centres)
                moved = float(np.sum((step.centroids - centres) ** 2, dtype=np.float64))
                centres = np.array(step.centroids, dtype=np.float32)
                if moved <= tol:
                    break
            inertia = float(step.obj[-1])
            if best is None or inertia < best[0]:
                best = (inertia, centres, iterations)
        self.inertia_, self.cluster_centers_, self.n_iter_ = best
        self._index = None
        return self

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_index"}

    def _flat(self):
        if getattr(self, "_index", None) is None:
            import faiss

            self._index = faiss.IndexFlatL2(self.cluster_centers_.shape[1])
            self._index.add(self.cluster_centers_)
        return self._index

    def predict(self, Z):
        """The nearest centre of each row of ``Z``, in chunks."""
        out = np.empty(len(Z), dtype=np.intp)
        index = self._flat()
        for lo in range(0, len(Z), CHUNK):
            out[lo : lo + CHUNK] = index.search(as_f32(Z[lo : lo + CHUNK]), 1)[1][:, 0]
        return out


def ivf_of(index):
    """The IVF index inside ``index`` (itself, or the base of a refining index)."""
    import faiss

    base = faiss.downcast_index(index.base_index) if hasattr(index, "base_index") else index
    return faiss.extract_index_ivf(base)


def tune_n_probe(index, Z, *, k, target, n_queries, seed):
    """Set the smallest power-of-two ``nprobe`` whose recall@k, measured on ``n_queries``
    indexed vectors chosen at random (each query's own vector left out) against exact
    search, reaches ``target``; return ``(nprobe, recall)``."""
    import faiss

    rng = np.random.default_rng(seed)
    n = len(Z)
    rows = np.sort(rng.choice(n, min(n_queries, n), replace=False))
    queries = as_f32(Z[rows])
    exact = np.empty((len(rows), k + 1), dtype=np.int64)
    best = np.full((len(rows), k + 1), np.inf, dtype=np.float32)
    for lo in range(0, n, CHUNK * 4):  # exact neighbours, streaming over the vectors
        block = as_f32(Z[lo : lo + CHUNK * 4])
        d, i = faiss.knn(queries, block, k + 1)
        d, i = np.concatenate([best, d], axis=1), np.concatenate([exact, i + lo], axis=1)
        keep = np.argsort(d, axis=1, kind="stable")[:, : k + 1]
        best, exact = np.take_along_axis(d, keep, 1), np.take_along_axis(i, keep, 1)
    truth = [set(e[e != r][:k].tolist()) for e, r in zip(exact, rows, strict=True)]
    ivf = ivf_of(index)
    probe, recall = 1, 0.0
    while True:
        ivf.nprobe = probe
        _, found = index.search(queries, k + 1)
        recall = float(np.mean([
            len(t & set(f[f != r][:k].tolist())) / k
            for t, f, r in zip(truth, found, rows, strict=True)
        ]))  # fmt: skip
        if recall >= target or probe >= ivf.nlist:
            return probe, recall
        probe = min(2 * probe, ivf.nlist)
