"""The re-ranking step: fold a person's vetted grades into a clustering's labels and score
every object again (the loop of grading a report's candidates and looking at the next)."""

from __future__ import annotations

import numpy as np

from astrounsup._provenance import provenance
from astrounsup.catalog import grade_labels, id_positions, result_catalog
from astrounsup.latent import fold_grades, label_clusters
from astrounsup.pipeline._results import StepResult, bad_pixel_flags_of

__all__ = ["grades_alone", "rerank_candidates"]

_REGIMES = ("labeled", "positive-unlabeled", "grades")


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


def grades_alone(lens_grade, where):
    """Labels ``(labels, labeled)`` from the lens grades (one per object) of a run that
    had none: labels of both classes when some objects are graded ``not``, else the graded
    lenses as known positives. ``where`` starts the message of too few grades."""
    is_lens, is_not = lens_grade == "lens", lens_grade == "not"
    if is_lens.sum() < 2 or (is_not.any() and is_not.sum() < 2):
        msg = (
            f"{where} ranking from grades alone needs at least "
            f"2 graded lenses (and 2 graded 'not', if any); got {int(is_lens.sum())} and "
            f"{int(is_not.sum())}"
        )
        raise ValueError(msg)
    if is_not.any():
        return np.ma.array(is_lens, mask=~(is_lens | is_not)), is_lens | is_not
    return is_lens.copy(), is_lens.copy()


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
    (:func:`astrounsup.latent.label_clusters`) on the features the clustering scored on,
    the catalog's ``cluster_features`` and, when there, ``arc_features``. Grades of kind
    ``anomaly`` are carried into the catalog (``anomaly_grade``) and do not change the lens
    ranking. A clustering made
    without labels is ranked from the grades alone (labels of both classes when some are
    graded ``not``, else the graded lenses as known positives): the first grades of a
    report's lens-like cutouts (its arc ranking) start a learnt ranking.

    Parameters
    ----------
    latents : array_like of shape (n, d)
    table : astropy.table.Table
        The latents' catalog (``object_id`` per row).
    clusters : astropy.table.Table
        The clusters catalog of :func:`astrounsup.pipeline.cluster_latents` on these
        latents (its ``meta`` holds the settings).
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
        no candidates and rank last, as in the clustering), ``<name>_rank_before`` (the
        ranking graded: the score's, or without labels ``arc_rank``, when there),
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
    if not name and "cluster" in clusters.colnames and regime is None:
        name, regime = "lens", "grades"  # a clustering without labels: the grades are all
    if (
        not name
        or regime not in _REGIMES
        or (regime != "grades" and "labeled" not in clusters.colnames)
    ):
        msg = (
            f"{where}: not a clustering of this package (its meta has no score_name and "
            "regime, or it has no cluster column)"
        )
        raise ValueError(msg)
    if "cluster_features" not in clusters.colnames:
        msg = (
            f"{where}: no cluster_features column (the features its clusters were found "
            "in, which the re-ranking scores on); cluster the latents again to add it"
        )
        raise ValueError(msg)
    clusters = _by_id(clusters, ids, where)
    lens_grade = grade_labels(grades, table, kind="lens", where=where)
    anomaly_grade = grade_labels(grades, table, kind="anomaly", where=where)
    if regime == "grades":
        labels, labeled = grades_alone(lens_grade, f"{where} was clustered without labels:")
    elif regime == "labeled":
        column = meta.get("labels_column")
        if column not in clusters.colnames:
            msg = f"{where}: the labels column {column!r} of its clustering is not in it"
            raise ValueError(msg)
        labels, labeled = fold_grades(lens_grade, np.asarray(clusters["labeled"], bool),
                                      labels=clusters[column],
                                      positive=meta.get("positive") or None)  # fmt: skip
    else:
        labels, labeled = fold_grades(lens_grade, np.asarray(clusters["labeled"], bool))
    cluster = np.asarray(clusters["cluster"])
    # Flagged cutouts (bad pixels) stay out of the candidates, as the clustering kept them.
    features = np.asarray(clusters["cluster_features"], dtype=np.float64)
    if "arc_features" in clusters.colnames:  # the clustering scored on both
        features = np.hstack([features, np.asarray(clusters["arc_features"], np.float64)])
    new, summary, metrics = label_clusters(
        cluster, labels, features=features,
        positive=True, labeled=labeled, threshold=float(meta.get("threshold", 0.5)),
        name=name, seed=int(meta.get("seed", 0)),
        flagged=bad_pixel_flags_of(table) | bad_pixel_flags_of(clusters),
    )  # fmt: skip
    # The ranking the grades were given on: the score's, or without labels the arcs'.
    before = next((c for c in (f"{name}_rank", "arc_rank") if c in clusters.colnames), None)
    columns = new | {"lens_grade": lens_grade, "anomaly_grade": anomaly_grade}
    if before is not None:
        columns[f"{name}_rank_before"] = np.asarray(clusters[before])
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
