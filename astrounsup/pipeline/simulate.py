"""Making the built-in surveys on disk: lens-survey cutouts and a Gaia-like star table."""

from __future__ import annotations

import inspect
from pathlib import Path

from astrounsup._config import merge_config
from astrounsup.catalog import write_catalog
from astrounsup.io import write_survey_directory
from astrounsup.plotting import color_magnitude_figure, kind_montage, save_figure
from astrounsup.simulate import simulate_lens_survey, simulate_stars

__all__ = ["make_stars", "make_survey", "star_defaults", "survey_defaults"]


def _defaults(function, skip):
    return {
        p.name: p.default
        for p in inspect.signature(function).parameters.values()
        if p.kind is p.KEYWORD_ONLY and p.name not in skip
    }


def survey_defaults():
    """Settings of :func:`make_survey`: those of
    :func:`astrounsup.simulate.simulate_lens_survey`, ``n`` and whether to write FITS files
    and a montage."""

    return {"n": 2000, **_defaults(simulate_lens_survey, ("progress",)), "fits": True,
            "montage": True}  # fmt: skip


def star_defaults():
    """Settings of :func:`make_stars`: ``n`` and those of
    :func:`astrounsup.simulate.simulate_stars`."""

    return {"n": 20000, **_defaults(simulate_stars, ())}


def make_survey(config, out, *, progress=True):
    """Simulate a lens survey and write it into ``out``.

    Parameters
    ----------
    config : dict
        Over :func:`survey_defaults`: ``n``, ``seed``, ``bands``, ``size``,
        ``pixel_scale``, ``lens_fraction``, ``anomaly_fraction``, ``nan_fraction``,
        ``device`` (see :func:`astrounsup.simulate.simulate_lens_survey`), ``fits`` and
        ``montage``.
    out : str or pathlib.Path
        Receives ``cutouts.h5``, ``fits/<object_id>.fits``, ``truth.ecsv`` and
        ``montage.png``, each written atomically.
    progress : bool, optional
        Show a progress bar.

    Returns
    -------
    survey : astrounsup.simulate.SimulatedSurvey
    paths : dict of str to pathlib.Path
        ``"store"``, ``"fits"``, ``"truth"`` and ``"montage"`` (those written).
    """

    cfg = merge_config(survey_defaults(), config, owner="survey")
    n, fits, montage = cfg.pop("n"), cfg.pop("fits"), cfg.pop("montage")
    cfg["bands"] = tuple(cfg["bands"])
    survey = simulate_lens_survey(n, progress=progress, **cfg)
    paths = write_survey_directory(
        out,
        survey.images,
        survey.table,
        bands=survey.bands,
        pixel_scale=survey.pixel_scale,
        fits=fits,
    )
    if montage:
        fig = kind_montage(
            survey.images, survey.table["kind"], survey.bands, titles=survey.table["object_id"]
        )
        paths["montage"] = save_figure(fig, Path(out) / "montage.png", dpi=100)
    return survey, paths


def make_stars(config, out):
    """Simulate a Gaia-like star table; write ``stars.ecsv`` and ``cmd.png`` into ``out``.

    Parameters
    ----------
    config : dict
        Over :func:`star_defaults`: ``n`` and the settings of
        :func:`astrounsup.simulate.simulate_stars`.
    out : str or pathlib.Path

    Returns
    -------
    table : astropy.table.QTable
    paths : dict of str to pathlib.Path
        ``"table"`` and ``"figure"``.
    """

    cfg = merge_config(star_defaults(), config, owner="stars")
    table = simulate_stars(cfg.pop("n"), **cfg)
    out = Path(out)
    paths = {"table": write_catalog(table, out / "stars.ecsv", overwrite=True)}
    paths["figure"] = save_figure(color_magnitude_figure(table), out / "cmd.png", dpi=100)
    return table, paths
