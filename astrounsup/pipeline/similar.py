"""The look-alike step: the objects most similar to given objects, or to new cutouts."""

from __future__ import annotations

import numpy as np

from astrounsup._config import merge_config
from astrounsup._provenance import provenance
from astrounsup.latent import SimilaritySearch
from astrounsup.pipeline._results import StepResult

__all__ = ["SIMILAR_DEFAULTS", "find_similar"]

#: Settings of :func:`find_similar` (and the defaults of ``astrounsup similar``).
SIMILAR_DEFAULTS = {"k": 10, "metric": "euclidean", "id_column": "object_id", "backend": "sklearn"}


def find_similar(latents, table, config=None, *, ids=None, vectors=None, names=None, inputs=None):
    """The ``k`` nearest objects to each query, by object id or by latent vector.

    Parameters
    ----------
    latents : array_like of shape (n, d)
    table : astropy.table.Table
        One row per object, with the id column.
    config : dict, optional
        Over :data:`SIMILAR_DEFAULTS`: ``k``, ``metric`` (``"euclidean"`` or
        ``"cosine"``), ``id_column`` and ``backend`` (``"sklearn"``, or ``"faiss"`` for
        an exact faiss index; see :class:`astrounsup.latent.SimilaritySearch`).
    ids : sequence, optional
        Query objects by id (each itself left out of its neighbours).
    vectors : array_like of shape (m, d), optional
        Query latent vectors instead (e.g. :meth:`astrounsup.training.TrainedModel.embed`
        of new cutouts).
    names : sequence of str, optional
        What to call each query vector in the table (default its row).
    inputs : dict, optional
        Input files for the provenance and the messages (``latents``).

    Returns
    -------
    StepResult
        Table ``neighbors``: ``query``, ``rank`` (1 = nearest), ``neighbor_id``,
        ``neighbor_row``, ``distance`` and the neighbours' ``ra``/``dec``.

    Raises
    ------
    ValueError
        Neither or both of ``ids`` and ``vectors``, no id column, or an unknown id
        (naming the latents).
    """

    cfg = merge_config(SIMILAR_DEFAULTS, config, owner="similar")
    inputs = dict(inputs or {})
    where = inputs.get("latents", "the latents")
    if (ids is None) == (vectors is None):
        msg = "give query ids or query vectors (one of them)"
        raise ValueError(msg)
    if cfg["id_column"] not in table.colnames:
        msg = f"{where}: no id column {cfg['id_column']!r}; it has {table.colnames}"
        raise ValueError(msg)
    known = np.asarray(table[cfg["id_column"]])
    search = SimilaritySearch(
        n_neighbors=cfg["k"], metric=cfg["metric"], backend=cfg["backend"]
    ).fit(latents, ids=known)
    if ids is not None:
        try:
            result = search.query_ids(np.asarray(ids, dtype=known.dtype))
        except KeyError as err:
            msg = f"{where}: {err.args[0]}"
            raise ValueError(msg) from err
    else:
        result = search.query(vectors, query_ids=names)
    rows = np.asarray(result["neighbor_row"])
    for name in ("ra", "dec"):
        if name in table.colnames:
            result[name] = table[name][rows]
    result.meta.update(
        provenance("astrounsup similar", **inputs, k=cfg["k"], metric=cfg["metric"])
    )
    return StepResult(tables={"neighbors": result})
