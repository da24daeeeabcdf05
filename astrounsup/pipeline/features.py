"""The physics-features step: blue light around a red centre, measured on every cutout
without training (:class:`astrounsup.features.ArcFeatures`)."""

from __future__ import annotations

import numpy as np

from astrounsup._config import merge_config
from astrounsup._progress import progress_bar
from astrounsup._provenance import provenance
from astrounsup.catalog import result_catalog
from astrounsup.pipeline._results import StepResult, bad_pixel_flags_of

__all__ = ["FEATURES_DEFAULTS", "arc_features_skipped", "measure_arc_features"]

#: Settings of :func:`measure_arc_features` (the ``[features]`` table of a lens search):
#: ``arc_features`` (measure them: the lens scorer uses them beside the latents and a run
#: without labels ranks by :func:`astrounsup.features.arc_score`), ``red`` (the band whose
#: light is subtracted; default the reddest) and ``batch_size``.
FEATURES_DEFAULTS = {"arc_features": True, "red": None, "batch_size": 512}


def measure_arc_features(data, config=None, *, inputs=None, progress=False):
    """Arc features of every cutout and the lens-likeness they give without labels.

    Parameters
    ----------
    data : path or astrounsup.io.CutoutDataset
        The cutouts (a store, FITS, or a dataset); its table's ``psf_fwhm`` column
        (arcsec, one per band), when there, PSF-matches the bands.
    config : dict, optional
        Over :data:`FEATURES_DEFAULTS`.
    inputs : dict, optional
        Input files recorded in the catalog's provenance.
    progress : bool, optional

    Returns
    -------
    StepResult
        Table ``arc_features``: every object with ``arc_features`` (the vector, its
        names in ``meta["feature_names"]``), ``arc_score`` and ``arc_rank`` (1 = most
        lens-like; cutouts flagged for bad pixels rank last); summary ``n_features`` and
        ``note`` (a line saying which band was taken as the reddest when the bands are not
        all known to :mod:`astrounsup.instrument` and ``red`` is not set; else None).

    Raises
    ------
    ValueError
        A bad setting, or cutouts whose bands (fewer than two; see
        :func:`arc_features_skipped`) or pixel scale the features cannot use (naming them).
    """
    # PyTorch loads here, not on import: the command line's help reads the defaults.
    from astrounsup.features import ArcFeatures, arc_score
    from astrounsup.instrument import BANDS
    from astrounsup.io import as_dataset
    from astrounsup.latent import descending_rank, flagged_last

    cfg = merge_config(FEATURES_DEFAULTS, config, owner="features")
    dataset = as_dataset(data)
    if not np.isfinite(dataset.pixel_scale):
        msg = f"arc features: the pixel scale of {inputs or data} is unknown; set pixel_scale"
        raise ValueError(msg)
    bands = [str(b) for b in dataset.bands]
    red, note = cfg["red"], None
    if red is None and not all(b.lower() in {k.lower() for k in BANDS} for b in bands):
        red = bands[-1]
        note = (f"bands {bands} are not all known to astrounsup.instrument; the last, "
                f"{red!r}, is taken as the reddest (set [features] red to choose)")  # fmt: skip
    est = ArcFeatures(bands=bands, pixel_scale=float(dataset.pixel_scale), red=red,
                      batch_size=cfg["batch_size"]).fit()  # fmt: skip
    table = dataset.table
    psf = None
    if "psf_fwhm" in table.colnames:
        col = table["psf_fwhm"]
        psf = np.asarray(col.to_value("arcsec") if hasattr(col, "unit") and col.unit else col,
                         dtype=np.float64)  # fmt: skip
        if psf.shape != (len(table), len(dataset.bands)):
            psf = None  # not one width per band: the bands are used as they are
    n, size = len(dataset), cfg["batch_size"]
    parts = []
    with progress_bar(total=n, desc="arc features", unit="cutout", enabled=progress) as bar:
        for lo in range(0, n, size):
            rows = np.arange(lo, min(lo + size, n))
            images, _, _ = dataset[rows]
            parts.append(est.transform(images.numpy(),
                                       psf_fwhm=None if psf is None else psf[rows]))  # fmt: skip
            bar.update(len(rows))
    features = np.concatenate(parts) if parts else np.zeros((0, len(est.feature_names_)))
    score = arc_score(features, est.feature_names_)
    constant = dataset.constant_flags()  # every cutout was read: no second pass
    rank = flagged_last(descending_rank(score), bad_pixel_flags_of(table) | constant)
    meta = provenance("astrounsup arc features", **dict(inputs or {}), red=est.red)
    meta["feature_names"] = list(est.feature_names_)
    columns = {"arc_features": features.astype(np.float32), "arc_score": score,
               "arc_rank": rank, "constant": constant}  # fmt: skip
    keep = [c for c in ("object_id", "ra", "dec") if c in table.colnames]
    result = StepResult()
    result.tables["arc_features"] = result_catalog(table[keep], columns, meta=meta)
    result.summary["n_features"] = features.shape[1]
    result.summary["note"] = note
    return result


def arc_features_skipped(bands, pixel_scale):
    """Why the arc features cannot be measured on cutouts of ``bands`` and
    ``pixel_scale`` (arcsec/px; None if they can): colour residuals need two bands, and
    circles in arcsec a known pixel scale.

    Examples
    --------
    >>> arc_features_skipped(["g", "r", "i"], 0.263) is None
    True
    >>> arc_features_skipped(["r"], 0.263)
    "one band (['r']): the arc features need two bands for a colour"
    """
    if len(bands) < 2:
        return f"one band ({list(bands)}): the arc features need two bands for a colour"
    if not np.isfinite(pixel_scale):
        return "the pixel scale is unknown: the arc features measure in arcsec"
    return None
