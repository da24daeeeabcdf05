"""The anomaly step: score every object with detectors on its pixels (trails, sharp hits,
ghosts, rings), latent-space scorers and, from a trained autoencoder or VAE,
reconstruction errors (relative to look-alikes, with a context embedding); combine them
each on the scale of its own top per cent."""

from __future__ import annotations

import numpy as np

from astrounsup._config import merge_config
from astrounsup._estimators import check_choice, check_int, check_number
from astrounsup._provenance import provenance
from astrounsup.catalog import grade_labels, result_catalog
from astrounsup.catalog.table import id_positions
from astrounsup.latent import (
    COMBINE_RULES,
    SCORERS,
    AnomalyScorer,
    model_scores_to_rank,
    rank_anomalies,
    rank_scores,
    rank_with_grades,
)
from astrounsup.pipeline._results import StepResult, bad_pixel_flags_of
from astrounsup.plotting import gallery

# ``astrounsup anomalies --help`` reads ANOMALY_DEFAULTS from here: the cutout reader and
# the model scores (which load PyTorch) are imported by the functions that use them.

__all__ = ["ANOMALY_DEFAULTS", "score_anomalies"]

#: Settings of :func:`score_anomalies` (and the defaults of ``astrounsup anomalies``).
ANOMALY_DEFAULTS = {
    "methods": ["iforest", "lof", "knn"],
    "detectors": ["trail", "sharp", "ghost", "ring"],
    "recon": False,
    "context_neighbors": 50,
    "context_components": 16,
    "combine": "tail",
    "gap_fraction": 0.02,
    "n_neighbors": 20,
    "gallery": 32,
    "seed": 0,
    "device": None,
}


def _context(context, table, cfg, inputs):
    """The context latents, checked against the scored objects before any scoring."""
    name = inputs.get("context", "the context latents")
    where = inputs.get("latents", "the latents")
    vectors, ctable = context if isinstance(context, tuple) else (context, None)
    vectors = np.asarray(vectors)
    if ctable is not None and "object_id" in table.colnames and "object_id" in ctable.colnames:
        # Joined by object_id: the same objects in any order (others there are ignored).
        rows = id_positions(ctable["object_id"], table["object_id"],
                            what=f"objects of {where}", where=f"context {name}")  # fmt: skip
        vectors = vectors[rows]
    elif len(vectors) != len(table):
        msg = f"context {name} has {len(vectors)} objects; {where} {len(table)}"
        raise ValueError(msg)
    if len(vectors) <= cfg["context_neighbors"]:
        msg = (
            f"context_neighbors {cfg['context_neighbors']} needs more objects than that; "
            f"{name} has {len(vectors)}"
        )
        raise ValueError(msg)
    return vectors


def score_anomalies(
    latents, table, config=None, *, model=None, data=None, context=None, grades=None,
    inputs=None, progress=True,
):  # fmt: skip
    """Rank every object by anomaly scores.

    Parameters
    ----------
    latents : array_like of shape (n, d)
    table : astropy.table.Table
        One row per object; carried into the catalog.
    config : dict, optional
        Over :data:`ANOMALY_DEFAULTS`: ``methods`` (latent-space scorers among
        :data:`astrounsup.latent.SCORERS`, or empty), ``detectors`` (measured on the
        cutouts of ``data``, among :data:`astrounsup.features.DETECTORS`: straight
        trails, hits sharper than the PSF, flat faint light off the object, rings; or
        empty), ``recon`` (add the reconstruction errors of ``model`` and, for a VAE, its
        negative ELBO), ``context_neighbors``, ``context_components`` (see
        :func:`astrounsup.latent.context_model_scores`), ``combine`` (``"tail"``: the
        largest of the scores each scaled to its own top per cent, so a scorer adds its
        outliers and not its ordinary top; ``"max"``: the largest percentile rank;
        ``"mean"``: see :func:`astrounsup.latent.rank_anomalies`), ``gap_fraction`` (in
        [0, 1]: an object lacking data on more than this share of a band's pixels, a
        coverage gap, is scored by the detectors only), ``n_neighbors`` (LOF, k-NN),
        ``gallery`` (cutouts in the figure, 0 for none), ``seed`` and ``device``.
    model : astrounsup.training.TrainedModel or path, optional
        The autoencoder or VAE whose reconstruction errors ``recon`` adds.
    data : path, numpy.ndarray or astrounsup.io.CutoutDataset, optional
        The cutouts: measured by the ``detectors`` (which need them, and their pixel
        scale: an array has none, so give a dataset), reconstructed with ``recon``, shown
        in the gallery. A store or dataset
        is joined to ``table`` by ``object_id`` (it must hold every object, in any order);
        an array must be in the order of ``latents``.
    context : array_like of shape (n, d) or (array, table), optional
        Latents of the same objects in another embedding (e.g. SimCLR): with ``recon``,
        each model score is also given relative to those of the objects most alike there
        (``*_context``), with LOF in the joint space of those latents and the log errors
        (``context_lof``), and those are combined instead of the raw model scores (the
        artefact scores, :data:`astrounsup.latent.ARTEFACT_SCORES`, stay as they are). A
        table given with it is joined by ``object_id``: it must hold every scored object,
        in any order.
    grades : astropy.table.Table, optional
        A person's grades (:func:`astrounsup.catalog.read_grades`); those of kind
        ``anomaly`` re-rank the objects (:func:`astrounsup.latent.rank_with_grades`:
        graded anomalies first, graded ``not`` after the ungraded). Every graded id must
        be in ``table``.
    inputs : dict, optional
        Input files and settings for the provenance and the messages (``latents``,
        ``checkpoint``, ``store``, ``context``, ``grades``).
    progress : bool, optional
        Show a progress bar while the model reconstructs the cutouts.

    Returns
    -------
    StepResult
        Table ``anomalies``: every object, most anomalous first, with ``score_<scorer>``,
        ``percentile_<scorer>`` (the detectors' per-band scores ``score_trail_<band>``
        and ``score_sharp_<band>`` shown, not combined), ``anomaly_score`` (the
        combination), ``top_scorer`` (the scorer that put the object highest), with
        ``grades`` also ``anomaly_grade``, and
        ``anomaly_rank``, ``coverage_gap`` (more than ``gap_fraction`` of a band without
        data: scored by the pixel detectors only, the latent and model scorers NaN, as
        those saw the gap filled with flat sky; with no detector such an object has no
        score and ranks after the scored ones); objects whose ``bad_pixel_flag`` is set
        (a band without good pixels, or too many bad: see :func:`astrounsup.io.bad_pixel_flags`) or
        ``constant`` (a band of one value everywhere, as embedding notes it) are scored
        by none (NaN) and ranked after all others; figure ``anomalies`` (the top of the
        list) when ``data`` is given; summary ``scorers``, ``order`` (rows of ``table``,
        most anomalous first), ``n_flagged``.

    Raises
    ------
    ValueError
        An unknown scorer, detector or setting, no scorer at all, detectors or ``recon``
        without the cutouts, or context latents of other objects (naming the files).
    """

    cfg = merge_config(ANOMALY_DEFAULTS, config, owner="anomalies")
    # Checked whether or not they are used this time, so a typo never passes unseen.
    check_int("anomalies", "gallery", cfg["gallery"], 0)
    check_int("anomalies", "context_neighbors", cfg["context_neighbors"], 1)
    check_int("anomalies", "context_components", cfg["context_components"], 0)
    check_number("anomalies", "gap_fraction", cfg["gap_fraction"], 0.0, 1.0)
    inputs = dict(inputs or {})
    methods = [m for m in cfg["methods"] if m != "none"]
    unknown = [m for m in methods if m not in SCORERS]
    if unknown:
        msg = f"methods: unknown scorers {unknown}; choose among {list(SCORERS)}"
        raise ValueError(msg)
    detectors = _check_detectors(cfg["detectors"], data)
    check_choice("anomalies", "combine", cfg["combine"], COMBINE_RULES)
    if context is not None and not cfg["recon"]:
        msg = "context needs recon (it compares each model score with the neighbours')"
        raise ValueError(msg)
    context = None if context is None else _context(context, table, cfg, inputs)
    if cfg["recon"] and (model is None or data is None):
        msg = (
            "recon needs a model checkpoint and the cutouts (--checkpoint and --data; the "
            "latents file names neither)"
        )
        raise ValueError(msg)
    # The cutouts of each latent vector, found by object_id (None: by position).
    cutout_rows = None if data is None else _cutout_rows(data, table, inputs)
    # Cutouts flagged for bad pixels or a constant band are scored by none, listed last.
    good = ~bad_pixel_flags_of(table)
    n_good = int(good.sum())
    if n_good == 0:
        msg = (
            f"every one of the {len(table)} objects is flagged (bad_pixel_flag or constant): "
            "nothing to score"
        )
        raise ValueError(msg)
    if context is not None:
        context = context[good]
    scores, shown = {}, {}
    for m in methods:
        est = AnomalyScorer(m, n_neighbors=cfg["n_neighbors"], random_state=cfg["seed"])
        scores[m] = est.fit_score(np.asarray(latents)[good])
    # Cutouts cut by a coverage gap (a survey edge, a chip gap): the latents (and a model's
    # reconstruction) saw the gap filled with flat sky, an oddity of the data, not of the
    # sky; only the pixel detectors, which leave pixels without data out, score them.
    gap = coverage_gaps(table, cfg["gap_fraction"])
    if detectors:
        measured = _detect(data, detectors, cutout_rows, len(table), inputs, progress)
        scores |= {k: v[good] for k, v in measured.items() if k in detectors}
        shown |= {k: v[good] for k, v in measured.items() if k not in detectors}

    if cfg["recon"]:
        from astrounsup.latent import model_scores

        extra = model_scores(model, data, device=cfg["device"], progress=progress)
        extra = {k: v[cutout_rows] for k, v in extra.items()} if cutout_rows is not None else extra
        if len(extra["chi2"]) != len(latents):
            msg = (
                f"{inputs.get('store', 'the cutouts')} has {len(extra['chi2'])} cutouts; "
                f"{inputs.get('latents', 'the latents')} {len(latents)}"
            )
            raise ValueError(msg)
        ranked, model_shown = model_scores_to_rank(
            {k: np.asarray(v)[good] for k, v in extra.items()}, context=context,
            n_neighbors=cfg["context_neighbors"], n_components=cfg["context_components"],
            seed=cfg["seed"],
        )  # fmt: skip
        scores |= ranked
        shown |= model_shown
    if not scores:
        msg = "no scorer: give methods, detectors and/or recon"
        raise ValueError(msg)
    for k in scores:
        if k not in detectors:  # a scorer of the latents or of the model
            scores[k] = np.where(gap[good], np.nan, scores[k])

    def every_row(values):  # NaN for the flagged rows
        out = np.full((len(table), *np.shape(values)[1:]), np.nan)
        out[good] = values
        return out

    scores = {k: every_row(v) for k, v in scores.items()}
    graded = None
    if grades is not None:
        ids = table["object_id"] if "object_id" in table.colnames else None
        if ids is None:
            msg = "grades need the objects' object_id; the latents' table has none"
            raise ValueError(msg)
        where = str(inputs.get("latents", "the latents"))
        graded = grade_labels(grades, table, kind="anomaly", where=where)
        combined, rank = rank_with_grades(scores, graded, how=cfg["combine"], flagged=~good)
    else:
        combined, rank = rank_anomalies(scores, how=cfg["combine"], flagged=~good)
    columns = {}
    for name, s in ({k: every_row(v) for k, v in shown.items()} | scores).items():
        columns[f"score_{name}"] = s
        columns[f"percentile_{name}"] = every_row(rank_scores(s[good]))
    columns["anomaly_score"] = combined
    columns["anomaly_rank"] = rank
    columns["top_scorer"] = _top_scorer(scores, good, cfg["combine"])
    columns["coverage_gap"] = gap
    if graded is not None:
        columns["anomaly_grade"] = graded
    order = np.argsort(rank)
    with_context = context is not None
    meta = provenance(
        "astrounsup anomalies", latents=inputs.get("latents"), scorers=",".join(scores),
        detectors=",".join(detectors) or None, grades=inputs.get("grades"),
        combine=cfg["combine"], n_neighbors=cfg["n_neighbors"], seed=cfg["seed"],
        checkpoint=inputs.get("checkpoint") if cfg["recon"] else None,
        store=inputs.get("store"), context=inputs.get("context") if with_context else None,
        context_neighbors=cfg["context_neighbors"] if with_context else None,
        context_components=cfg["context_components"] if with_context else None,
        n_flagged_unscored=len(table) - n_good, gap_fraction=cfg["gap_fraction"],
    )  # fmt: skip
    result = StepResult(
        summary={"scorers": list(scores), "order": order, "n_flagged": len(table) - n_good,
                 "n_coverage_gaps": int(np.sum(gap & good))}
    )  # fmt: skip
    result.tables["anomalies"] = result_catalog(table, columns, meta=meta)[order]
    if cfg["gallery"] and data is not None:
        top = order[: cfg["gallery"]]
        shown_rows = top if cutout_rows is None else cutout_rows[top]
        result.figures["anomalies"] = _gallery(data, table, top, shown_rows)
    return result


def coverage_gaps(table, fraction):
    """Which objects lack data on more than ``fraction`` of a band's pixels (the store's
    ``bad_fraction``), ``(n,)`` bool; all False without that column."""
    if "bad_fraction" not in table.colnames:
        return np.zeros(len(table), dtype=bool)
    bad = np.asarray(table["bad_fraction"], dtype=np.float64).reshape(len(table), -1)
    return (bad > fraction).any(1) if bad.size else np.zeros(len(table), dtype=bool)


def _check_detectors(detectors, data):
    from astrounsup.features import DETECTORS

    detectors = [d for d in detectors if d != "none"]
    unknown = [d for d in detectors if d not in DETECTORS]
    if unknown:
        msg = f"detectors: unknown detectors {unknown}; choose among {list(DETECTORS)}"
        raise ValueError(msg)
    if detectors and data is None:
        msg = (
            "detectors need the cutouts: give data (--data), or set detectors to none "
            f"(asked for {detectors})"
        )
        raise ValueError(msg)
    return detectors


def _detect(data, detectors, cutout_rows, n, inputs, progress):
    """The detectors' scores of every object, in the order of the table (n rows)."""
    from astrounsup._progress import progress_bar
    from astrounsup.features import detector_scores
    from astrounsup.io import as_dataset

    dataset = as_dataset(data)
    where = inputs.get("store", "the cutouts")
    if not np.isfinite(dataset.pixel_scale):
        msg = (
            f"detectors need the pixel scale of {where}, which does not record it; set it "
            "(pixel_scale) or set detectors to none"
        )
        raise ValueError(msg)
    bands = [str(b) for b in dataset.bands]
    psf = _psf_fwhm(dataset.table, len(bands)) if getattr(dataset, "table", None) else None
    rows = np.arange(len(dataset)) if cutout_rows is None else np.asarray(cutout_rows)
    if len(rows) != n:
        msg = f"{where} has {len(rows)} cutouts; the latents {n}"
        raise ValueError(msg)
    parts, size = [], 512
    with progress_bar(total=n, desc="detectors", unit="cutout", enabled=progress) as bar:
        for lo in range(0, n, size):
            chunk = rows[lo : lo + size]
            images = dataset.pixels(chunk)  # pixels without data NaN: left out
            parts.append(detector_scores(
                images, bands=bands, pixel_scale=float(dataset.pixel_scale),
                psf_fwhm=None if psf is None else psf[chunk], detectors=detectors,
            ))  # fmt: skip
            bar.update(len(chunk))
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _psf_fwhm(table, n_bands):
    """The table's ``psf_fwhm`` column as (n, bands) arcsec, or None without one per band."""
    if "psf_fwhm" not in table.colnames:
        return None
    col = table["psf_fwhm"]
    psf = np.asarray(
        col.to_value("arcsec") if getattr(col, "unit", None) else col, dtype=np.float64
    )
    return psf if psf.shape == (len(table), n_bands) else None


def _top_scorer(scores, good, how):
    """Name of the scorer that put each object highest (on the scale ``how`` combines);
    empty for flagged objects."""
    from astrounsup.latent import tail_scaled

    names = list(scores)
    scale = tail_scaled if how == "tail" else rank_scores
    stack = np.stack([scale(np.asarray(scores[k])[good]) for k in names])
    best = np.argmax(np.where(np.isnan(stack), -np.inf, stack), 0)
    out = np.full(len(good), "", dtype=f"U{max(len(k) for k in names)}")
    out[good] = np.asarray(names)[best]
    return out


def _cutout_rows(data, table, inputs):
    """Row of ``data`` holding each latent vector's cutout, joined by ``object_id`` when
    both have ids (refused naming the ids the cutouts lack), else ``None``."""
    from astrounsup.io import as_dataset

    if isinstance(data, np.ndarray):  # bare pixels: no ids, so in the latents' order
        return None
    ids = getattr(as_dataset(data), "table", None)
    if ids is None or "object_id" not in ids.colnames or "object_id" not in table.colnames:
        return None
    return id_positions(ids["object_id"], table["object_id"],
                        what=f"objects of {inputs.get('latents', 'the latents')}",
                        where=str(inputs.get("store", "the cutouts")))  # fmt: skip


def _gallery(data, table, rows, data_rows):
    from astrounsup.io import as_dataset

    dataset = as_dataset(data)
    images = dataset.pixels(data_rows)  # the stored fluxes; no data shown as such
    ids = np.asarray(table["object_id"])[rows] if "object_id" in table.colnames else rows
    titles = [f"#{k + 1} {i}" for k, i in enumerate(ids)]
    return gallery(images, dataset.bands, titles=titles, pixel_scale=dataset.pixel_scale)
