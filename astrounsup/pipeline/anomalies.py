"""The anomaly step: score every object with latent-space scorers and, from a trained
autoencoder or VAE, reconstruction errors (relative to look-alikes, with a context
embedding); combine them by rank."""

from __future__ import annotations

import numpy as np

from astrounsup._config import merge_config
from astrounsup._estimators import check_int
from astrounsup._provenance import provenance
from astrounsup.catalog import result_catalog
from astrounsup.catalog.table import id_positions
from astrounsup.latent import (
    SCORERS,
    AnomalyScorer,
    model_scores_to_rank,
    rank_anomalies,
    rank_scores,
)
from astrounsup.pipeline._results import StepResult, bad_pixel_flags_of
from astrounsup.plotting import gallery

# ``astrounsup anomalies --help`` reads ANOMALY_DEFAULTS from here: the cutout reader and
# the model scores (which load PyTorch) are imported by the functions that use them.

__all__ = ["ANOMALY_DEFAULTS", "score_anomalies"]

#: Settings of :func:`score_anomalies` (and the defaults of ``astrounsup anomalies``).
ANOMALY_DEFAULTS = {
    "methods": ["iforest", "lof", "knn"],
    "recon": False,
    "context_neighbors": 50,
    "context_components": 16,
    "combine": "max",
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
    latents, table, config=None, *, model=None, data=None, context=None, inputs=None,
    progress=True,
):  # fmt: skip
    """Rank every object by anomaly scores.

    Parameters
    ----------
    latents : array_like of shape (n, d)
    table : astropy.table.Table
        One row per object; carried into the catalog.
    config : dict, optional
        Over :data:`ANOMALY_DEFAULTS`: ``methods`` (latent-space scorers among
        :data:`astrounsup.latent.SCORERS`, or empty), ``recon`` (add the reconstruction
        errors of ``model`` and, for a VAE, its negative ELBO), ``context_neighbors``,
        ``context_components`` (see :func:`astrounsup.latent.context_model_scores`),
        ``combine`` (``"max"``: an object odd to any one scorer ranks high, as artefacts
        are found by different scorers; or ``"mean"``), ``n_neighbors`` (LOF, k-NN),
        ``gallery`` (cutouts in the figure, 0 for none), ``seed`` and ``device``.
    model : astrounsup.training.TrainedModel or path, optional
        The autoencoder or VAE whose reconstruction errors ``recon`` adds.
    data : path, numpy.ndarray or astrounsup.io.CutoutDataset, optional
        The cutouts: reconstructed with ``recon``, shown in the gallery. A store or dataset
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
    inputs : dict, optional
        Input files and settings for the provenance and the messages (``latents``,
        ``checkpoint``, ``store``, ``context``).
    progress : bool, optional
        Show a progress bar while the model reconstructs the cutouts.

    Returns
    -------
    StepResult
        Table ``anomalies``: every object, most anomalous first, with ``score_<scorer>``,
        ``percentile_<scorer>``, ``anomaly_score`` (the combination) and
        ``anomaly_rank``; objects whose ``bad_pixel_flag`` is set (a band without good
        pixels, or too many bad: see :func:`astrounsup.io.bad_pixel_flags`) are scored
        by none (NaN) and ranked after all others; figure ``anomalies`` (the top of the
        list) when ``data`` is given; summary ``scorers``, ``order`` (rows of ``table``,
        most anomalous first), ``n_flagged``.

    Raises
    ------
    ValueError
        An unknown scorer or setting, no scorer at all, ``recon`` without a model and
        cutouts, or context latents of other objects (naming the files).
    """

    cfg = merge_config(ANOMALY_DEFAULTS, config, owner="anomalies")
    # Checked whether or not they are used this time, so a typo never passes unseen.
    check_int("anomalies", "gallery", cfg["gallery"], 0)
    check_int("anomalies", "context_neighbors", cfg["context_neighbors"], 1)
    check_int("anomalies", "context_components", cfg["context_components"], 0)
    inputs = dict(inputs or {})
    methods = [m for m in cfg["methods"] if m != "none"]
    unknown = [m for m in methods if m not in SCORERS]
    if unknown:
        msg = f"methods: unknown scorers {unknown}; choose among {list(SCORERS)}"
        raise ValueError(msg)
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
    # Cutouts flagged for bad pixels are scored by none and listed after every other.
    good = ~bad_pixel_flags_of(table)
    n_good = int(good.sum())
    if n_good == 0:
        msg = f"every one of the {len(table)} objects is flagged for bad pixels (bad_pixel_flag)"
        raise ValueError(msg)
    if context is not None:
        context = context[good]
    scores, shown = {}, {}
    for m in methods:
        est = AnomalyScorer(m, n_neighbors=cfg["n_neighbors"], random_state=cfg["seed"])
        scores[m] = est.fit_score(np.asarray(latents)[good])
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
        ranked, shown = model_scores_to_rank(
            {k: np.asarray(v)[good] for k, v in extra.items()}, context=context,
            n_neighbors=cfg["context_neighbors"], n_components=cfg["context_components"],
            seed=cfg["seed"],
        )  # fmt: skip
        scores |= ranked
    if not scores:
        msg = "no scorer: give methods and/or recon"
        raise ValueError(msg)

    def every_row(values):  # NaN for the flagged rows
        out = np.full((len(table), *np.shape(values)[1:]), np.nan)
        out[good] = values
        return out

    scores = {k: every_row(v) for k, v in scores.items()}
    combined, rank = rank_anomalies(scores, how=cfg["combine"], flagged=~good)
    columns = {}
    for name, s in ({k: every_row(v) for k, v in shown.items()} | scores).items():
        columns[f"score_{name}"] = s
        columns[f"percentile_{name}"] = every_row(rank_scores(s[good]))
    columns["anomaly_score"] = combined
    columns["anomaly_rank"] = rank
    order = np.argsort(rank)
    with_context = context is not None
    meta = provenance(
        "astrounsup anomalies", latents=inputs.get("latents"), scorers=",".join(scores),
        combine=cfg["combine"], n_neighbors=cfg["n_neighbors"], seed=cfg["seed"],
        checkpoint=inputs.get("checkpoint") if cfg["recon"] else None,
        store=inputs.get("store"), context=inputs.get("context") if with_context else None,
        context_neighbors=cfg["context_neighbors"] if with_context else None,
        context_components=cfg["context_components"] if with_context else None,
        n_flagged_unscored=len(table) - n_good,
    )  # fmt: skip
    result = StepResult(
        summary={"scorers": list(scores), "order": order, "n_flagged": len(table) - n_good}
    )
    result.tables["anomalies"] = result_catalog(table, columns, meta=meta)[order]
    if cfg["gallery"] and data is not None:
        top = order[: cfg["gallery"]]
        shown_rows = top if cutout_rows is None else cutout_rows[top]
        result.figures["anomalies"] = _gallery(data, table, top, shown_rows)
    return result


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
    images = dataset[[int(r) for r in data_rows]][0].numpy()
    ids = np.asarray(table["object_id"])[rows] if "object_id" in table.colnames else rows
    titles = [f"#{k + 1} {i}" for k, i in enumerate(ids)]
    return gallery(images, dataset.bands, titles=titles)
