"""What a person looks at first in a run's latents: a 2-D map, the members nearest each
cluster's centre, the top-ranked objects and their look-alikes (what the report shows)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from astrounsup._estimators import check_int
from astrounsup.latent.neighbors import SimilaritySearch
from astrounsup.latent.reduce import Reducer

__all__ = ["LatentSummary", "summarize_latents"]


@dataclass
class LatentSummary:
    """The computed summary of one run's latents (:func:`summarize_latents`).

    Attributes
    ----------
    map : numpy.ndarray of shape (n, 2)
        UMAP of the latents (arbitrary units).
    cluster_members : dict of int to (list of int, list of int)
        Per cluster: the rows nearest its centre in the latents, nearest first, and a
        random few of its other members (sorted).
    lens_top, anomaly_top : list of int
        The rows of the best lens candidates and of the top anomalies, best first.
    lookalikes : dict of int to list of int
        For the first few of ``lens_top`` and ``anomaly_top``: the rows of their nearest
        neighbours in the latents, nearest first.
    """

    map: np.ndarray
    cluster_members: dict = field(default_factory=dict)
    lens_top: list = field(default_factory=list)
    anomaly_top: list = field(default_factory=list)
    lookalikes: dict = field(default_factory=dict)


def summarize_latents(
    latents, *, cluster=None, lens_rank=None, anomaly_rank=None, map_neighbors=15,
    cluster_nearest=6, cluster_random=3, top=24, lookalikes_of=3, lookalikes=6, seed=0,
):  # fmt: skip
    """A 2-D map, cluster exemplars, the top of two rankings and look-alikes of latents.

    Parameters
    ----------
    latents : array_like of shape (n, d)
    cluster : array_like of int, shape (n,), optional
        Each object's cluster.
    lens_rank, anomaly_rank : array_like of int, shape (n,), optional
        Each object's rank (1: best) as a lens candidate and as an anomaly.
    map_neighbors : int, optional
        Neighbours of the UMAP (at most ``n - 1``).
    cluster_nearest, cluster_random : int, optional
        Members of each cluster nearest its centre, and others drawn at random.
    top : int, optional
        Objects kept from the top of each ranking.
    lookalikes_of, lookalikes : int, optional
        Look-alikes (``lookalikes`` nearest neighbours) of the first ``lookalikes_of`` of
        each ranking.
    seed : int, optional
        Seeds the UMAP and the random members.

    Returns
    -------
    LatentSummary

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> z = np.concatenate([rng.normal(0, 1, (30, 4)), rng.normal(6, 1, (30, 4))])
    >>> s = summarize_latents(z, cluster=np.repeat([0, 1], 30), anomaly_rank=np.arange(60) + 1,
    ...                       top=5, lookalikes_of=1, lookalikes=3)
    >>> s.map.shape, s.anomaly_top, len(s.lookalikes[0]), len(s.cluster_members[1][0])
    ((60, 2), [0, 1, 2, 3, 4], 3, 6)
    """

    z = np.asarray(latents, dtype=np.float64)
    if z.ndim != 2 or len(z) < 2:
        msg = f"latents must be (n, d) with n >= 2; got shape {z.shape}"
        raise ValueError(msg)
    n = len(z)
    for name, value in (("map_neighbors", map_neighbors), ("lookalikes", lookalikes)):
        check_int("summarize_latents", name, value, 1)
    for name, value in (("cluster_nearest", cluster_nearest),
                        ("cluster_random", cluster_random), ("top", top),
                        ("lookalikes_of", lookalikes_of)):  # fmt: skip
        check_int("summarize_latents", name, value, 0)
    for name, value in (("cluster", cluster), ("lens_rank", lens_rank),
                        ("anomaly_rank", anomaly_rank)):  # fmt: skip
        if value is not None and np.shape(value) != (n,):
            msg = f"{name} must have shape ({n},), one per latent vector; got {np.shape(value)}"
            raise ValueError(msg)
    xy = Reducer("umap", n_components=2, n_neighbors=min(map_neighbors, n - 1),
                 random_state=seed).fit_transform(z)  # fmt: skip
    summary = LatentSummary(map=xy)
    rng = np.random.default_rng(seed)
    if cluster is not None:
        cluster = np.asarray(cluster)
        for c in sorted(np.unique(cluster).tolist()):
            members = np.flatnonzero(cluster == c)
            centre = z[members].mean(0)
            order = members[np.argsort(((z[members] - centre) ** 2).sum(1))]
            near = order[:cluster_nearest].tolist()
            rest = order[cluster_nearest:]
            few = sorted(rng.choice(rest, size=min(cluster_random, rest.size),
                                    replace=False).tolist()) if rest.size else []  # fmt: skip
            summary.cluster_members[c] = (near, few)
    if lens_rank is not None:
        summary.lens_top = np.argsort(np.asarray(lens_rank))[:top].tolist()
    if anomaly_rank is not None:
        summary.anomaly_top = np.argsort(np.asarray(anomaly_rank))[:top].tolist()
    chosen = summary.lens_top[:lookalikes_of] + summary.anomaly_top[:lookalikes_of]
    if chosen:
        ids = [str(i) for i in range(n)]
        search = SimilaritySearch(n_neighbors=min(lookalikes, n - 1)).fit(z, ids=ids)
        for i in chosen:
            summary.lookalikes[i] = [int(r) for r in search.query_ids([ids[i]])["neighbor_row"]]
    return summary
