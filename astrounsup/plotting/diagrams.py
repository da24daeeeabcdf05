"""Diagrams of catalogues: the colour-magnitude diagram of a stellar table."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

__all__ = [
    "color_magnitude_figure",
    "distinct_colours",
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


def loss_curve_figure(history, *, title=None, loss_label="loss"):
    """Training loss per step (and validation loss) of a run's history dict.

    Parameters
    ----------
    history : dict
        ``step`` and ``loss`` lists, optionally ``val_step`` and ``val_loss``
        (:meth:`astrounsup.training.TrainingHistory.as_dict`).
    title : str, optional
        E.g. the model and its settings.
    loss_label : str, optional
        The loss and its unit (:data:`astrounsup.training.LOSS_LABELS`).

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.subplots()
    ax.plot(history["step"], history["loss"], lw=1, label="training")
    if history.get("val_step"):
        ax.plot(history["val_step"], history["val_loss"], "o-", ms=3, label="validation")
    ax.set_xlabel("optimizer step [count]")
    ax.set_ylabel(loss_label)
    if min(history["loss"] or [1.0]) > 0:
        ax.set_yscale("log")
    if title:
        ax.set_title(title, fontsize=9)
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


def _group_order(names):
    """Group names in numeric order when they are all integers, else in text order."""
    try:
        return sorted(names, key=lambda g: (int(g), g))
    except ValueError:
        return sorted(names)


def distinct_colours(n):
    """``n`` colours (hex) that neighbours in a list can tell apart: the 60 of matplotlib's
    tab20, tab20b and tab20c, ordered so that consecutive ones differ in hue (the ten tab10
    hues, their light shades, then tab20b and tab20c shade by shade), repeated beyond 60.

    Examples
    --------
    >>> distinct_colours(3)
    ['#1f77b4', '#ff7f0e', '#2ca02c']
    >>> len(set(distinct_colours(60)))
    60
    """
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    tab20 = colormaps["tab20"].colors
    b, c = colormaps["tab20b"].colors, colormaps["tab20c"].colors
    ordered = list(tab20[0::2]) + list(tab20[1::2])
    for shade in range(4):
        ordered += list(b[shade::4]) + list(c[shade::4])
    return [to_hex(ordered[i % 60]) for i in range(n)]


def _distinct_styles(n):
    """``n`` (colour, marker) pairs: 60 distinct colours, then the same with other markers."""
    markers = ("o", "s", "^", "D", "v")
    return [(colour, markers[(i // 60) % len(markers)])
            for i, colour in enumerate(distinct_colours(n))]  # fmt: skip


def latent_map_figure(xy, *, groups=None, marked=(), marked_label="lens", title=None,
                      axis_label="component", axis_unit="arbitrary units",
                      group_label="group", known=None, known_label="known lens"):  # fmt: skip
    """Scatter of a two-dimensional embedding, optionally coloured by group.

    Each group gets its own colour (60 distinct ones, then other markers), its name written
    on the map at its median position, and a legend entry in numeric order with its size;
    ``marked`` groups (e.g. the clusters named lenses) are boxed on the map and flagged in
    the legend.

    Parameters
    ----------
    xy : array_like of shape (n, 2)
    groups : array_like of shape (n,), optional
        Cluster ids or labels.
    marked : collection, optional
        Groups to mark.
    marked_label : str, optional
        What a marked group is, written after its legend entry.
    title : str, optional
    axis_label : str, optional
        The axes are ``"<axis_label> 1"`` and ``"<axis_label> 2"``.
    axis_unit : str, optional
        The unit of both axes.
    group_label : str, optional
        What a group is (the legend's title), e.g. ``"cluster"``.
    known : array_like of bool, shape (n,), optional
        Points drawn over the rest as black-edged stars (e.g. the known lenses whose labels
        ranked the others), with a legend entry ``known_label (count)``.
    known_label : str, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> fig = latent_map_figure(rng.normal(size=(300, 2)), groups=np.arange(300) % 24,
    ...                         marked=[3], axis_label="PC")
    >>> [t.get_text() for t in fig.axes[0].get_legend().get_texts()][1:4]
    ['1 (13)', '2 (13)', '3 (13) lens']
    >>> fig.axes[0].get_xlabel()
    'PC 1 [arbitrary units]'

    """
    xy = np.asarray(xy, dtype=float)
    if xy.ndim != 2 or xy.shape[1] < 2:
        msg = f"xy must have shape (n, 2); got {xy.shape}"
        raise ValueError(msg)
    size = max(0.5, min(8.0, 3000.0 / max(len(xy), 1)))
    if groups is None:
        fig = Figure(figsize=(6.0, 5.5), layout="constrained")
        ax = fig.subplots()
        ax.scatter(xy[:, 0], xy[:, 1], s=size, alpha=0.6)
    else:
        groups = np.asarray(groups).astype(str)
        if groups.shape != (len(xy),):
            msg = f"groups must have one entry per point ({len(xy)}); got {groups.shape}"
            raise ValueError(msg)
        marked = {str(g) for g in marked}
        names = _group_order(np.unique(groups).tolist())
        fig = Figure(figsize=(8.0, 5.5), layout="constrained")
        ax = fig.subplots()
        for name, (colour, marker) in zip(names, _distinct_styles(len(names)), strict=True):
            m = groups == name
            flag = f" {marked_label}" if name in marked else ""
            ax.scatter(xy[m, 0], xy[m, 1], s=size, alpha=0.6, color=colour, marker=marker,
                       label=f"{name} ({m.sum()}){flag}")  # fmt: skip
        for name in names:
            cx, cy = np.median(xy[groups == name, :2], axis=0)
            box = (dict(boxstyle="round,pad=0.2", fc="gold", ec="black", lw=0.8)
                   if name in marked else
                   dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.7))  # fmt: skip
            ax.annotate(name, (cx, cy), ha="center", va="center", fontsize=7, bbox=box,
                        fontweight="bold" if name in marked else "normal")  # fmt: skip
        title_text = f"{group_label} (members)" + (f"; {marked_label}: boxed" if marked else "")
        legend = ax.legend(markerscale=max(1.0, 6.0 / size), fontsize=7, loc="upper left",
                           bbox_to_anchor=(1.01, 1.0), ncol=1 + (len(names) - 1) // 30,
                           title=title_text, title_fontsize=7, frameon=False)  # fmt: skip
    if known is not None:
        known = np.asarray(known, dtype=bool)
        if known.shape != (len(xy),):
            msg = f"known must have one entry per point ({len(xy)}); got {known.shape}"
            raise ValueError(msg)
        if known.any():
            ax.scatter(xy[known, 0], xy[known, 1], s=60, marker="*", facecolor="gold",
                       edgecolor="black", linewidth=0.7, zorder=5,
                       label=f"{known_label} ({int(known.sum())})")  # fmt: skip
            handles, texts = ax.get_legend_handles_labels()
            ax.legend(handles[-1:], texts[-1:], loc="lower left", fontsize=7, frameon=True)
            if groups is not None:  # the groups' legend stays beside the map
                ax.add_artist(legend)
    ax.set_xlabel(f"{axis_label} 1 [{axis_unit}]")
    ax.set_ylabel(f"{axis_label} 2 [{axis_unit}]")
    if title:
        ax.set_title(title, fontsize=9)
    return fig
