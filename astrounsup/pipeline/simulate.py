"""Making the built-in surveys on disk: lens-survey cutouts and a Gaia-like star table."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np

from astrounsup._atomic import atomic_path
from astrounsup._config import merge_config
from astrounsup.catalog import write_catalog
from astrounsup.io import write_survey_directory
from astrounsup.plotting import color_magnitude_figure, kind_montage, save_figure
from astrounsup.simulate import simulate_lens_survey, simulate_stars

__all__ = ["make_stars", "make_survey", "star_defaults", "survey_defaults", "write_known_lenses"]


def _defaults(function, skip):
    return {
        p.name: p.default
        for p in inspect.signature(function).parameters.values()
        if p.kind is p.KEYWORD_ONLY and p.name not in skip
    }


def survey_defaults():
    """Settings of :func:`make_survey`: those of
    :func:`astrounsup.simulate.simulate_lens_survey`, ``n``, whether to write FITS files
    and a montage, and how many lenses to list as known."""

    return {"n": 2000, **_defaults(simulate_lens_survey, ("progress",)), "fits": True,
            "montage": True, "known_lenses": 0}  # fmt: skip


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
        ``device`` (see :func:`astrounsup.simulate.simulate_lens_survey`), ``fits``,
        ``montage`` and ``known_lenses``: that many of the survey's lenses (at most half of
        them), drawn at random with its ``seed``, are listed in ``known_lenses.txt`` (the
        list of known lenses a team would start from; 0 writes none;
        :func:`write_known_lenses`).
    out : str or pathlib.Path
        Receives ``cutouts.h5``, ``fits/<object_id>.fits``, ``truth.ecsv``,
        ``montage.png`` and ``known_lenses.txt``, each written atomically.
    progress : bool, optional
        Show a progress bar.

    Returns
    -------
    survey : astrounsup.simulate.SimulatedSurvey
    paths : dict of str to pathlib.Path
        ``"store"``, ``"fits"``, ``"truth"``, ``"montage"`` and ``"known_lenses"`` (those
        written).

    Raises
    ------
    ValueError
        An unknown setting, ``known_lenses`` not an integer >= 0, or known lenses asked of
        a survey with fewer than two lenses.
    """

    cfg = merge_config(survey_defaults(), config, owner="survey")
    n, fits, montage = cfg.pop("n"), cfg.pop("fits"), cfg.pop("montage")
    n_known = cfg.pop("known_lenses")
    if isinstance(n_known, bool) or not isinstance(n_known, (int, np.integer)) or n_known < 0:
        msg = f"known_lenses must be an integer >= 0; got {n_known!r}"
        raise ValueError(msg)
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
            survey.images, survey.table["kind"], survey.bands, titles=survey.table["object_id"],
            pixel_scale=survey.pixel_scale,
        )  # fmt: skip
        paths["montage"] = save_figure(fig, Path(out) / "montage.png", dpi=100)
    if n_known:
        paths["known_lenses"] = write_known_lenses(
            survey.table, Path(out) / "known_lenses.txt", n_known, seed=cfg["seed"]
        )
    return survey, paths


def write_known_lenses(table, path, n_known, *, seed=None):
    """List ``n_known`` of the lenses of a simulated survey's ``table`` (``is_lens``), drawn
    at random, in ``path``: one ``object_id`` per line after a ``#`` header that says how
    many of how many. At most half the survey's lenses are listed (a small survey lists
    fewer than asked, and its header says so), so that there are lenses left to find.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ValueError
        A survey with fewer than two lenses.
    """
    ids = np.asarray(table["object_id"]).astype(str)
    lenses = ids[np.asarray(table["is_lens"], dtype=bool)]
    if len(lenses) < 2:
        msg = (
            f"known_lenses: the survey holds {len(lenses)} lenses; at least 2 are needed "
            "(make it larger, or set known_lenses = 0)"
        )
        raise ValueError(msg)
    n = min(int(n_known), len(lenses) // 2)
    rng = np.random.default_rng(None if seed is None else [int(seed), 20261206])
    known = sorted(rng.choice(lenses, size=n, replace=False).tolist())
    header = f"{n} of the {len(lenses)} lenses of this simulated survey, drawn at random"
    if n < n_known:
        header += f" ({n_known} asked for; at most half are listed)"
    with atomic_path(path) as tmp:
        tmp.write_text(f"# {header}\n" + "\n".join(known) + "\n")
    return Path(path)


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
