"""The re-ranking step: fold a person's vetted grades into a clustering's labels and score
every object again (the loop of grading a report's candidates and looking at the next)."""

from __future__ import annotations

import numpy as np

from astrounsup._provenance import provenance
from astrounsup.catalog import grade_labels, id_positions, result_catalog
from astrounsup.latent import fold_grades, label_clusters
from astrounsup.pipeline._results import StepResult, bad_pixel_flags_of

__all__ = ["rerank_candidates"]

_REGIMES = ("labeled", "positive-unlabeled")


def _by_id(clusters, ids, where):
    """Rows of ``clusters`` in the order of ``ids`` (the latents'), matched by object_id."""
    if "object_id" not in clusters.colnames:
        msg = f"{where}: no object_id column"
        raise ValueError(msg)
    if len(clusters) != len(ids):
        msg = (
            f"{where} holds other objects than the latents ({len(clusters)} rows against "
            f"{len(ids)}): they are not of the same run"
        )
        raise ValueError(msg)

    return clusters[id_positions(clusters["object_id"], ids, what="latents' objects",
                                 where=where)]  # fmt: skip


def rerank_candidates(latents, table, clusters, grades, *, inputs=None):
    """Fold vetted lens grades into the labels of a named clustering and rank every object
    again.

    The labels are rebuilt as the clustering step used them and the grades of kind
    ``lens`` replace them (:func:`astrounsup.latent.fold_grades`): ``lens`` makes an
    object a labeled positive, ``not`` a labeled negative, ``unsure`` leaves it as it was.
    In the labeled regime (a share of labels of both classes) the grades join those
    labels. In the positive-unlabeled regime (a list of known lenses) graded lenses join
    the known ones and a ``not`` removes an object from them; every other object stays
    unlabeled, i.e. counted among the negatives, as a ``not`` already was. The clusters are
    those of ``clusters``; the per-object score is refitted
    (:func:`astrounsup.latent.label_clusters`) on the features the clusters were found in,
    the catalog's ``cluster_features``. Grades of kind ``anomaly`` are carried into the
    catalog (``anomaly_grade``) and do not change the lens ranking.

    Parameters
    ----------
    latents : array_like of shape (n, d)
    table : astropy.table.Table
        The latents' catalog (``object_id`` per row).
    clusters : astropy.table.Table
        The clusters catalog of :func:`astrounsup.pipeline.cluster_latents` run with labels
        on these latents (its ``meta`` holds the settings).
    grades : astropy.table.Table
        :func:`astrounsup.catalog.read_grades`.
    inputs : dict, optional
        Input files recorded in the catalogs' provenance (``latents``, ``clusters``,
        ``grades``).

    Returns
    -------
    StepResult
        Tables ``clusters`` (every object, in the order of ``latents``: the clustering's
        columns with ``<name>_cluster_fraction``, ``<name>_score``, ``<name>_candidate``,
        ``<name>_rank`` and ``labeled`` refitted (cutouts with ``bad_pixel_flag`` set are
        no candidates and rank last, as in the clustering), and ``<name>_rank_before``,
        ``lens_grade``, ``anomaly_grade``) and ``cluster_summary``; summary
        ``n_grades`` (grade -> count) and ``metrics`` (on the known labels neither used
        nor graded).

    Raises
    ------
    ValueError
        A catalog without named clusters, of other objects than the latents, or grades of
        objects not in them (naming the first few).
    """

    inputs = dict(inputs or {})
    where = str(inputs.get("clusters", "the clusters catalog"))
    z = np.asarray(latents, dtype=np.float64)
    ids = np.asarray(table["object_id"]).astype(str)
    if z.ndim != 2 or len(z) != len(ids):
        msg = f"latents must be (n, d) with one row per catalog row ({len(ids)}); got {z.shape}"
        raise ValueError(msg)
    meta = dict(clusters.meta)
    name, regime = meta.get("score_name"), meta.get("regime")
    if not name or regime not in _REGIMES or "labeled" not in clusters.colnames:
        msg = (
            f"{where}: not a clustering named from labels (its meta has no score_name and "
            "regime); run the cluster step with labels_column or known_positives first"
        )
        raise ValueError(msg)
    if "cluster_features" not in clusters.colnames:
        msg = (
            f"{where}: no cluster_features column (the features its clusters were found "
            "in, which the re-ranking scores on); cluster the latents again to add it"
        )
        raise ValueError(msg)
    clusters = _by_id(clusters, ids, where)
    lens_grade = grade_labels(grades, ids, kind="lens", where=where)
    anomaly_grade = grade_labels(grades, ids, kind="anomaly", where=where)
    labeled = np.asarray(clusters["labeled"], dtype=bool)
    if regime == "labeled":
        column = meta.get("labels_column")
        if column not in clusters.colnames:
            msg = f"{where}: the labels column {column!r} of its clustering is not in it"
            raise ValueError(msg)
        labels, labeled = fold_grades(lens_grade, labeled, labels=clusters[column],
                                      positive=meta.get("positive") or None)  # fmt: skip
    else:
        labels, labeled = fold_grades(lens_grade, labeled)
    cluster = np.asarray(clusters["cluster"])
    # Flagged cutouts (bad pixels) stay out of the candidates, as the clustering kept them.
    new, summary, metrics = label_clusters(
        cluster, labels, features=np.asarray(clusters["cluster_features"], dtype=np.float64),
        positive=True, labeled=labeled, threshold=float(meta.get("threshold", 0.5)),
        name=name, seed=int(meta.get("seed", 0)),
        flagged=bad_pixel_flags_of(table) | bad_pixel_flags_of(clusters),
    )  # fmt: skip
    columns = new | {
        f"{name}_rank_before": np.asarray(clusters[f"{name}_rank"]),
        "lens_grade": lens_grade,
        "anomaly_grade": anomaly_grade,
    }
    counts = {f"lens {g}": int(np.sum(lens_grade == g)) for g in ("lens", "not", "unsure")}
    counts |= {f"anomaly {g}": int(np.sum(anomaly_grade == g)) for g in ("anomaly", "not")}
    keep = {k: v for k, v in meta.items() if k not in ("step", "date", "astrounsup_version")}
    run_meta = keep | provenance("astrounsup rank", **inputs) | metrics
    run_meta["n_grades"] = counts
    summary.meta.update(run_meta)
    result = StepResult()
    result.tables["clusters"] = result_catalog(clusters, columns, meta=run_meta)
    result.tables["cluster_summary"] = summary
    result.summary = {"n_grades": counts, "metrics": metrics}
    return result
