"""Diagrams of catalogues: the colour-magnitude diagram of a stellar table."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

__all__ = [
    "color_magnitude_figure",
    "latent_map_figure",
    "loss_curve_figure",
    "main_sequence_figure",
]


def color_magnitude_figure(
    table,
    *,
    color="bp_rp",
    magnitude="phot_g_mean_mag",
    parallax="parallax",
    min_parallax_over_error=5.0,
    by="stage",
):
    """Gaia colour-absolute-magnitude diagram of a stellar table.

    ``M_G = G + 5 log10(parallax / 100 mas)`` for stars with
    ``parallax / parallax_error >= min_parallax_over_error`` (others are not shown, and
    the title says how many).

    Parameters
    ----------
    table : astropy.table.Table
        Gaia-named columns (``bp_rp``, ``phot_g_mean_mag``, ``parallax`` in mas,
        ``parallax_error``).
    color, magnitude, parallax : str, optional
        Column names.
    min_parallax_over_error : float, optional
        Parallax signal-to-noise cut.
    by : str or None, optional
        Column that colours the points (e.g. ``stage``); ``None`` for one colour.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import astropy.units as u

    plx = u.Quantity(table[parallax], u.mas).value
    err = u.Quantity(table[f"{parallax}_error"], u.mas).value
    good = plx / err >= min_parallax_over_error
    col = u.Quantity(table[color]).value[good]
    mag = u.Quantity(table[magnitude]).value[good] + 5.0 * np.log10(plx[good] / 100.0)
    fig = Figure(figsize=(5.5, 6.5), layout="constrained")
    ax = fig.subplots()
    if by is not None and by in table.colnames:
        groups = np.asarray(table[by]).astype(str)[good]
        for g in np.unique(groups):
            m = groups == g
            ax.scatter(col[m], mag[m], s=2, alpha=0.6, label=f"{g} ({m.sum()})")
        ax.legend(markerscale=4, fontsize=8)
    else:
        ax.scatter(col, mag, s=2, alpha=0.6)
    ax.invert_yaxis()
    ax.set_xlabel(r"$G_{BP} - G_{RP}$ [mag]")
    ax.set_ylabel(r"$M_G$ [mag]")
    ax.set_title(
        f"{good.sum()} of {len(table)} stars with parallax S/N >= {min_parallax_over_error:g}",
        fontsize=9,
    )
    return fig


def loss_curve_figure(history):
    """Training loss per step (and validation loss) of a run's history dict."""
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.subplots()
    ax.plot(history["step"], history["loss"], lw=1, label="training")
    if history.get("val_step"):
        ax.plot(history["val_step"], history["val_loss"], "o-", ms=3, label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    if min(history["loss"] or [1.0]) > 0:
        ax.set_yscale("log")
    ax.legend()
    return fig


def main_sequence_figure(catalog):
    """Dereddened colour-absolute-magnitude diagram of a main-sequence catalog, coloured by
    ``ms_membership`` (from :func:`astrounsup.stars.main_sequence_catalog`).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import astropy.units as u

    use = np.asarray(catalog["ms_usable"], bool)
    col = u.Quantity(catalog["bp_rp_0"]).value[use]
    mag = u.Quantity(catalog["abs_g"]).value[use]
    member = np.asarray(catalog["ms_membership"]).astype(str)[use]
    fig = Figure(figsize=(5.5, 6.5), layout="constrained")
    ax = fig.subplots()
    for name in ("main_sequence", "above", "below"):
        m = member == name
        ax.scatter(col[m], mag[m], s=2, alpha=0.6, label=f"{name.replace('_', ' ')} ({m.sum()})")
    ax.legend(markerscale=4, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(r"$(G_{BP} - G_{RP})_0$ [mag]")
    ax.set_ylabel(r"$M_G$ [mag]")
    ax.set_title(f"{use.sum()} of {len(catalog)} stars measured well enough", fontsize=9)
    return fig


def latent_map_figure(xy, *, groups=None, title=None, axis_label="component"):
    """Scatter of a two-dimensional embedding, optionally coloured by group.

    Parameters
    ----------
    xy : array_like of shape (n, 2)
    groups : array_like of shape (n,), optional
        Cluster ids or labels; one colour and legend entry each (at most 20 shown in the
        legend).
    title : str, optional
    axis_label : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    xy = np.asarray(xy, dtype=float)
    if xy.ndim != 2 or xy.shape[1] < 2:
        msg = f"xy must have shape (n, 2); got {xy.shape}"
        raise ValueError(msg)
    fig = Figure(figsize=(6.0, 5.5), layout="constrained")
    ax = fig.subplots()
    size = max(0.5, min(8.0, 3000.0 / max(len(xy), 1)))
    if groups is None:
        ax.scatter(xy[:, 0], xy[:, 1], s=size, alpha=0.6)
    else:
        groups = np.asarray(groups).astype(str)
        names = np.unique(groups)
        for name in names:
            m = groups == name
            ax.scatter(xy[m, 0], xy[m, 1], s=size, alpha=0.6, label=f"{name} ({m.sum()})")
        if len(names) <= 20:
            ax.legend(markerscale=max(1.0, 6.0 / size), fontsize=7)
    ax.set_xlabel(f"{axis_label} 1")
    ax.set_ylabel(f"{axis_label} 2")
    if title:
        ax.set_title(title, fontsize=9)
    return fig
