"""The clustering step: cluster latents (on a reduction, if asked), name the clusters from
known labels, and map them."""

from __future__ import annotations

import numpy as np

from astrounsup._config import merge_config
from astrounsup._estimators import check_number
from astrounsup._provenance import provenance
from astrounsup.catalog import id_positions, result_catalog
from astrounsup.io import read_catalog
from astrounsup.latent import (
    REDUCE_COMPONENTS,
    LatentClusterer,
    Reducer,
    choose_k,
    known_labels,
    label_clusters,
    labels_from_catalog,
    parse_positive,
)
from astrounsup.latent.cluster import DEFAULT_N_CLUSTERS
from astrounsup.pipeline._results import StepResult, bad_pixel_flags_of
from astrounsup.plotting import latent_map_figure

__all__ = ["CLUSTER_DEFAULTS", "check_labels", "cluster_latents", "cluster_outputs"]

#: Settings of :func:`cluster_latents` (and the defaults of ``astrounsup cluster``).
CLUSTER_DEFAULTS = {
    "method": "kmeans",
    "k": DEFAULT_N_CLUSTERS,
    "min_cluster_size": 25,
    "reduce": None,
    "n_components": None,
    "metric": "euclidean",
    "fit_size": None,
    "backend": "sklearn",
    "kmeans_fit_size": None,
    "choose_k": None,
    "labels_column": None,
    "positive": None,
    "labeled_fraction": None,
    "known_positives": None,
    "id_column": "object_id",
    "name": None,
    "threshold": 0.5,
    "seed": 0,
}


def cluster_outputs(config=None):
    """The catalogs :func:`cluster_latents` makes with ``config``, by name."""
    cfg = merge_config(CLUSTER_DEFAULTS, config, owner="cluster")
    names = ["k_selection"] if cfg["choose_k"] else []
    if cfg["labels_column"] or cfg["known_positives"] is not None:
        names.append("cluster_summary")
    return [*names, "clusters"]


def _k_range(choose_k):
    if isinstance(choose_k, str):
        lo, _, hi = choose_k.partition(":")
        try:
            return range(int(lo), int(hi) + 1)
        except ValueError:
            msg = f"choose_k must be LO:HI (integers); got {choose_k!r}"
            raise ValueError(msg) from None
    lo, hi = choose_k
    return range(int(lo), int(hi) + 1)


def _known_positive_ids(known, where):
    """The ids of ``known_positives``: a sequence of ids, or a file of them (one per line,
    ``#`` comments), or a catalog file whose first column holds them."""
    from pathlib import Path

    if isinstance(known, (str, Path)):
        path = Path(known)
        if not path.is_file():
            msg = f"known_positives: no file {str(path)!r}"
            raise ValueError(msg)
        if path.suffix.lower() in (".ecsv", ".fits", ".fit", ".csv"):
            cat = read_catalog(path)
            return [str(v) for v in cat[cat.colnames[0]]]
        lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
        ids = [line for line in lines if line]
        if not ids:
            msg = f"known_positives: {str(path)!r} lists no ids"
            raise ValueError(msg)
        return ids
    ids = [str(v) for v in known]
    if not ids:
        msg = f"known_positives for {where}: the list is empty"
        raise ValueError(msg)
    return ids


def check_labels(table, config=None, *, where="the data"):
    """Check a cluster config's labels against the catalog ``table`` they will be read
    from, before anything is trained: the labels column exists and holds the positive
    label, or every known positive id is in the id column.

    Parameters
    ----------
    table : astropy.table.Table
        The objects' catalog (e.g. of the cutout store).
    config : dict, optional
        Over :data:`CLUSTER_DEFAULTS`.
    where : str, optional
        What ``table`` is the catalog of, for the messages (e.g. the store's path).

    Returns
    -------
    column : str or None
        The labels column (None without one).
    known_ids : list of str or None
        The known positive ids (None without them).

    Raises
    ------
    ValueError
        One line naming the option and ``where``: a missing column, a positive label not
        among the labels, ids not in the catalog, an empty or missing list of ids, or two
        label regimes at once.

    Examples
    --------
    >>> from astropy.table import Table
    >>> check_labels(Table({"object_id": ["a", "b"], "is_lens": [True, False]}),
    ...              {"labels_column": "is_lens"})
    ('is_lens', None)
    """

    cfg = merge_config(CLUSTER_DEFAULTS, config, owner="cluster")
    if cfg["labeled_fraction"] is not None and not cfg["labels_column"]:
        msg = "labeled_fraction needs labels_column (which column holds the labels)"
        raise ValueError(msg)
    column = cfg["labels_column"]
    if column and cfg["known_positives"] is not None:
        msg = "labels_column and known_positives are two label regimes; give one of them"
        raise ValueError(msg)
    if column:
        if column not in table.colnames:
            msg = f"{where}: no column {column!r} in its catalog; it has {table.colnames}"
            raise ValueError(msg)
        labels = table[column]
        known = known_labels(labels)
        positive = parse_positive(cfg["positive"], labels)
        present = np.unique(np.asarray(labels)[known]).tolist() if known.any() else []
        if positive not in present:
            msg = (
                f"{where}: the positive label {positive!r} is not among the labels of column "
                f"{column!r} {present[:10]}; name it with positive"
            )
            raise ValueError(msg)
        if len(present) == 1:
            msg = (
                f"{where}: column {column!r} holds one label ({positive!r}) for every labelled "
                "object; scoring needs positives and negatives (for a list of positives "
                "alone, give known_positives)"
            )
            raise ValueError(msg)
        return column, None
    if cfg["known_positives"] is None:
        return None, None
    if cfg["id_column"] not in table.colnames:
        msg = f"{where}: no id column {cfg['id_column']!r} in its catalog (id_column)"
        raise ValueError(msg)
    known_ids = _known_positive_ids(cfg["known_positives"], where)
    ids = np.asarray(table[cfg["id_column"]]).astype(str)
    missing = sorted(set(known_ids) - set(ids.tolist()))
    if missing:
        msg = (
            f"known_positives: {len(missing)} of {len(set(known_ids))} ids are not in "
            f"{where} (column {cfg['id_column']!r}), e.g. {missing[:3]}"
        )
        raise ValueError(msg)
    return None, known_ids


def _arc_columns(arc_features, table, where):
    """The ``arc_features``, ``arc_score`` and ``arc_rank`` columns of an arc-features
    catalog, in the order of ``table``'s objects (None without one)."""
    if arc_features is None:
        return None
    missing = [c for c in ("object_id", *ARC_COLUMNS) if c not in arc_features.colnames]
    if missing:
        msg = f"arc_features: not an arc-features catalog (no columns {missing})"
        raise ValueError(msg)
    rows = id_positions(arc_features["object_id"], np.asarray(table["object_id"]).astype(str),
                        what=f"objects of {where}", where="the arc features")  # fmt: skip
    return {c: np.asarray(arc_features[c])[rows] for c in ARC_COLUMNS}


#: The columns of the arc-features catalog a clustering carries.
ARC_COLUMNS = ("arc_features", "arc_score", "arc_rank")


def cluster_latents(latents, table, config=None, *, inputs=None, arc_features=None):
    """Cluster latent vectors; with labels, name the clusters and rank every object.

    Three label regimes: ``labels_column`` (labels of both classes, of which a
    ``labeled_fraction`` is used and the rest measure the result), ``known_positives``
    (ids of known positives only, e.g. ~50 known lenses) and neither (clusters only, for a
    person to name). With labels, every object gets its own calibrated probability
    (:class:`astrounsup.latent.LabelScorer`, on the features the clusters were found in)
    and the candidates rank by it without ties.

    Parameters
    ----------
    latents : array_like of shape (n, d)
    table : astropy.table.Table
        One row per object (ids, RA/Dec, labels); carried into the catalog.
    config : dict, optional
        Over :data:`CLUSTER_DEFAULTS`: ``method``, ``k``, ``min_cluster_size`` (HDBSCAN),
        ``reduce`` (``"pca"``/``"umap"``), ``n_components``, ``metric`` and ``fit_size``
        (of the reduction; :class:`astrounsup.latent.LatentClusterer`), ``backend``
        (``"sklearn"``/``"faiss"``) and ``kmeans_fit_size`` (k-means fitted on a sample,
        every object assigned), ``choose_k``
        (``"LO:HI"`` or a pair: also tabulate inertia and silhouette), ``labels_column``,
        ``positive``, ``labeled_fraction`` (the random share of known labels that names
        the clusters; the rest measure the result), ``known_positives`` (a list of ids, or
        a file of them: one per line, or a catalog whose first column holds them; matched
        against ``id_column``), ``name`` (stem of the score columns; default the labels
        column without ``is_``, or ``"lens"`` for known positives), ``threshold`` and
        ``seed``.
    inputs : dict, optional
        Input files and settings recorded in the catalogs' provenance (``latents``,
        ``checkpoint``, ``store``).
    arc_features : astropy.table.Table, optional
        The ``arc_features`` catalog of the same objects
        (:func:`astrounsup.pipeline.measure_arc_features`): the per-object score uses its
        features beside the clusters' (blue light around a red centre, which the latents
        may not bring out), and its ``arc_score`` and ``arc_rank`` (the lens-likeness
        without labels) are carried into the catalog, also when there are no labels.

    Returns
    -------
    StepResult
        Tables ``clusters`` (every object: ``cluster``, ``cluster_probability`` for
        mixtures, and with labels ``<name>_cluster_fraction``, ``<name>_score``,
        ``<name>_candidate`` (the probability above ``threshold``), ``<name>_rank`` and
        ``labeled``; :func:`astrounsup.latent.label_clusters`; ``cluster_features``, the
        features the clusters were found in; with ``arc_features`` also that vector,
        ``arc_score`` and ``arc_rank``), ``cluster_summary`` (with labels) and
        ``k_selection`` (with
        ``choose_k``); figure ``latent_map`` (the first two principal components); summary
        ``n_clusters``, the k choices and the metrics.

    Raises
    ------
    ValueError
        An unknown setting, a missing label column, or a bad value (naming it).
    """

    cfg = merge_config(CLUSTER_DEFAULTS, config, owner="cluster")
    check_number("cluster", "threshold", cfg["threshold"], 0.0, 1.0)  # even if unused here
    inputs = dict(inputs or {})
    where = inputs.get("latents", "the latents")
    if cfg["reduce"] is None and (cfg["metric"] != "euclidean" or cfg["fit_size"] is not None):
        msg = "metric and fit_size choose how the latents are reduced; they need reduce"
        raise ValueError(msg)
    column, known_ids = check_labels(table, cfg, where=where)
    ks = _k_range(cfg["choose_k"]) if cfg["choose_k"] else None
    reduction = {}
    if cfg["reduce"]:
        n_components = cfg["n_components"] or REDUCE_COMPONENTS[cfg["reduce"]]
        reduction = {"n_components": n_components, "metric": cfg["metric"],
                     "fit_size": cfg["fit_size"]}  # fmt: skip
    meta = provenance(
        "astrounsup cluster", **inputs, method=cfg["method"], k=cfg["k"],
        reduce=cfg["reduce"] or "none", **reduction, backend=cfg["backend"],
        kmeans_fit_size=cfg["kmeans_fit_size"], seed=cfg["seed"],
    )  # fmt: skip
    est = LatentClusterer(
        cfg["method"], n_clusters=cfg["k"], min_cluster_size=cfg["min_cluster_size"],
        reduce=cfg["reduce"], n_components=cfg["n_components"], metric=cfg["metric"],
        fit_size=cfg["fit_size"], random_state=cfg["seed"], backend=cfg["backend"],
        kmeans_fit_size=cfg["kmeans_fit_size"],
    )  # fmt: skip
    est.fit(latents)
    result = StepResult()
    if ks is not None:
        features = latents if est.reducer_ is None else est.reducer_.embedding_
        ksel = choose_k(features, ks, random_state=cfg["seed"])
        ksel.meta.update(meta)
        result.tables["k_selection"] = ksel
        result.summary["k_silhouette"] = ksel.meta["k_silhouette"]
        result.summary["k_elbow"] = ksel.meta["k_elbow"]
    columns = {"cluster": est.labels_}
    memberships = est.labels_
    if cfg["method"] in ("gmm", "bayes-gmm"):
        memberships = est.predict_proba(latents)
        columns["cluster_probability"] = memberships.max(1)
    result.summary["n_clusters"] = est.n_clusters_
    features = latents if est.reducer_ is None else est.reducer_.embedding_
    arcs = _arc_columns(arc_features, table, where)
    score_features = features if arcs is None else np.hstack(
        [features, arcs["arc_features"]])  # fmt: skip
    if column or known_ids is not None:
        labels, labeled = labels_from_catalog(
            table, labels_column=column, known_positive_ids=known_ids,
            id_column=cfg["id_column"], labeled_fraction=cfg["labeled_fraction"],
            seed=cfg["seed"],
        )  # fmt: skip
        name = cfg["name"] or (column.removeprefix("is_") if column else "lens")
        positive = cfg["positive"] if column else True
        # Flagged cutouts (bad pixels) are no candidates and rank last.
        new, summary, metrics = label_clusters(
            memberships, labels, features=score_features, positive=positive, labeled=labeled,
            threshold=cfg["threshold"], name=name, seed=cfg["seed"],
            flagged=bad_pixel_flags_of(table),
        )  # fmt: skip
        columns |= new
        # What a later re-ranking with vetted grades needs to rebuild these labels.
        meta |= {"score_name": name, "labels_column": column or "",
                 "positive": "" if positive is None else str(positive),
                 "threshold": cfg["threshold"]}  # fmt: skip
        summary.meta.update(meta | metrics)
        result.tables["cluster_summary"] = summary
        meta |= metrics
        result.summary["metrics"] = metrics
    # What the clusters were found in: a re-ranking scores every object on them again.
    columns["cluster_features"] = np.asarray(features, dtype=np.float64)
    if arcs is not None:
        columns |= arcs
        meta["arc_feature_names"] = list(arc_features.meta.get("feature_names", []))
    result.tables["clusters"] = result_catalog(table, columns, meta=meta)
    result.tables = {k: result.tables[k] for k in cluster_outputs(cfg)}
    xy = Reducer("pca", n_components=2, random_state=cfg["seed"]).fit_transform(latents)
    marked, what = (), "lens"
    known = None
    if column or known_ids is not None:  # the labelled positives that ranked the others
        known = np.asarray(labeled, bool) & (np.asarray(labels) == positive)
    if column:  # clusters called positive from labels of both classes
        named = np.nan_to_num(columns[f"{name}_cluster_fraction"], nan=0.0) > cfg["threshold"]
        marked, what = np.unique(est.labels_[named]).tolist(), f"named {name}"
    result.figures["latent_map"] = latent_map_figure(
        xy, groups=est.labels_, marked=marked, marked_label=what,
        title=f"{cfg['method']}, k = {est.n_clusters_}: clusters on the first two principal "
              "components of the latents", axis_label="latent PC", group_label="cluster",
        known=known, known_label=f"labelled {name}" if column else "known lens",
    )  # fmt: skip
    return result
