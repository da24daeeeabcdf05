"""The reduction step: PCA, UMAP or t-SNE of latents or of a feature table, and the main
sequence of a star table."""

from __future__ import annotations

import json

import numpy as np

from astrounsup._config import merge_config
from astrounsup._provenance import provenance
from astrounsup.catalog import result_catalog
from astrounsup.latent import Reducer
from astrounsup.pipeline._results import StepResult
from astrounsup.plotting import latent_map_figure, main_sequence_figure
from astrounsup.stars import MEMBERSHIPS, main_sequence_catalog

__all__ = [
    "MAIN_SEQUENCE_DEFAULTS",
    "REDUCE_DEFAULTS",
    "find_main_sequence",
    "reduce_features",
    "table_features",
]

#: Settings of :func:`reduce_features` (and the defaults of ``astrounsup reduce``).
REDUCE_DEFAULTS = {"method": "pca", "n_components": 2, "fit_size": None, "seed": 0}

#: Settings of :func:`find_main_sequence` (``astrounsup reduce --main-sequence``).
MAIN_SEQUENCE_DEFAULTS = {
    "method": "pca",
    "min_parallax_over_error": 10.0,
    "deredden": None,
    "seed": 0,
}


def table_features(table, columns, *, where="the table"):
    """The feature matrix ``(n, len(columns))`` of a table's numeric columns (Quantities in
    their own unit).

    Raises
    ------
    ValueError
        No columns named, or columns the table lacks (naming them and ``where``).
    """
    if not columns:
        msg = f"{where} is a table: name its feature columns (--columns a,b,c)"
        raise ValueError(msg)
    missing = [c for c in columns if c not in table.colnames]
    if missing:
        msg = f"{where}: no columns {missing}; it has {table.colnames}"
        raise ValueError(msg)
    return np.column_stack([np.asarray(getattr(table[c], "value", table[c])) for c in columns])


def reduce_features(features, table, config=None, *, inputs=None, title="reduced"):
    """Reduce features (latents, or table columns) to a few dimensions.

    Parameters
    ----------
    features : array_like of shape (n, d)
    table : astropy.table.Table
        One row per object; carried into the catalog.
    config : dict, optional
        Over :data:`REDUCE_DEFAULTS`: ``method`` (:data:`astrounsup.latent.REDUCERS`),
        ``n_components``, ``fit_size`` and ``seed``.
    inputs : dict, optional
        Input files for the provenance (``input``).
    title : str, optional
        The figure's subject.

    Returns
    -------
    StepResult
        Table ``reduced`` with ``<method>_1``, ``<method>_2``, ...; figure ``reduced``
        (with two or more components); summary ``explained_variance_ratio`` (PCA).
    """

    cfg = merge_config(REDUCE_DEFAULTS, config, owner="reduce")
    method = cfg["method"]
    red = Reducer(
        method, n_components=cfg["n_components"], fit_size=cfg["fit_size"],
        random_state=cfg["seed"],
    )  # fmt: skip
    emb = red.fit_transform(features)
    meta = provenance(
        "astrounsup reduce", **dict(inputs or {}), method=method, seed=cfg["seed"],
        fit_size=cfg["fit_size"],
    )  # fmt: skip
    result = StepResult()
    if method == "pca":
        ratio = [round(float(v), 6) for v in red.explained_variance_ratio_]
        meta["explained_variance_ratio"] = json.dumps(ratio)
        result.summary["explained_variance_ratio"] = ratio
    columns = {f"{method}_{k + 1}": emb[:, k] for k in range(emb.shape[1])}
    result.tables["reduced"] = result_catalog(table, columns, meta=meta)
    if emb.shape[1] >= 2:
        result.figures["reduced"] = latent_map_figure(
            emb, title=f"{method} of {title}", axis_label=method.upper()
        )
    return result


def find_main_sequence(stars, config=None, *, inputs=None):
    """The main sequence of a Gaia-like star table, and each star's place on or off it.

    Parameters
    ----------
    stars : astropy.table.Table
        Gaia-named columns (see :func:`astrounsup.stars.main_sequence_catalog`).
    config : dict, optional
        Over :data:`MAIN_SEQUENCE_DEFAULTS`: ``method`` (``"pca"`` or ``"umap"``),
        ``min_parallax_over_error``, ``deredden`` and ``seed``.
    inputs : dict, optional
        Input files for the provenance (``input``).

    Returns
    -------
    StepResult
        Table and figure ``main_sequence``; summary ``counts`` per membership.
    """

    cfg = merge_config(MAIN_SEQUENCE_DEFAULTS, config, owner="main sequence")
    if cfg["method"] == "tsne":
        msg = "the main sequence takes method 'pca' or 'umap' (t-SNE cannot place stars)"
        raise ValueError(msg)
    cat = main_sequence_catalog(
        stars,
        reducer=cfg["method"],
        min_parallax_over_error=cfg["min_parallax_over_error"],
        deredden=cfg["deredden"],
        random_state=cfg["seed"],
    )
    cat.meta.update(provenance("astrounsup reduce --main-sequence", **dict(inputs or {})))
    names = (*MEMBERSHIPS.values(), "unmeasured")
    counts = {m: int((cat["ms_membership"] == m).sum()) for m in names}
    return StepResult(
        tables={"main_sequence": cat},
        figures={"main_sequence": main_sequence_figure(cat)},
        summary={"counts": counts},
    )
