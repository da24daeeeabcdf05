"""Montages of cutouts as asinh colour composites."""

from __future__ import annotations

import numpy as np
from astropy.visualization import make_lupton_rgb
from matplotlib.figure import Figure

from astrounsup._atomic import atomic_path

__all__ = ["composite_rgb", "gallery", "kind_montage", "save_figure"]

_PREFERRED = ("i", "r", "g")  # red, green, blue planes of the classic gri composite


def _rgb_planes(bands):
    """Indices of the bands shown as red, green and blue."""
    bands = list(bands)
    if all(b in bands for b in _PREFERRED):
        return [bands.index(b) for b in _PREFERRED]
    if len(bands) >= 3:
        return [len(bands) - 1, len(bands) // 2, 0]
    return None


def composite_rgb(image, bands, *, stretch=0.08, Q=10.0):
    """Asinh (Lupton et al. 2004) colour composite of one cutout.

    Parameters
    ----------
    image : numpy.ndarray of shape (bands, ny, nx)
        Sky-subtracted fluxes; NaN pixels are shown black.
    bands : sequence of str
        Band of each plane; ``i, r, g`` become red, green and blue when present, otherwise
        the reddest, middle and bluest planes. Fewer than three bands give a grey image.
    stretch, Q : float, optional
        Linear range and asinh softening of the stretch, in the image's flux unit.

    Returns
    -------
    numpy.ndarray of shape (ny, nx, 3), uint8
    """
    image = np.nan_to_num(np.asarray(image, dtype=np.float64), nan=0.0)
    planes = _rgb_planes(bands)
    r, g, b = (image.mean(axis=0),) * 3 if planes is None else (image[k] for k in planes)
    # make_lupton_rgb divides by the summed intensity inside np.where, which evaluates the
    # division also where that sum is 0 (and then discards it).
    with np.errstate(divide="ignore", invalid="ignore"):
        return make_lupton_rgb(r, g, b, minimum=0.0, stretch=stretch, Q=Q)


def kind_montage(images, kinds, bands, *, per_kind=6, stretch=0.08, Q=10.0, seed=0, titles=None):
    """A grid of example cutouts, one row per kind.

    Parameters
    ----------
    images : numpy.ndarray of shape (n, bands, ny, nx)
    kinds : array_like of str, shape (n,)
        The kind of each cutout (rows are the distinct kinds, sorted).
    bands : sequence of str
    per_kind : int, optional
        Columns: examples shown per kind (fewer if a kind has fewer cutouts).
    stretch, Q : float, optional
        See :func:`composite_rgb`.
    seed : int, optional
        Chooses the examples.
    titles : array_like of str, optional
        A caption per cutout (e.g. its object id).

    Returns
    -------
    matplotlib.figure.Figure
    """
    kinds = np.asarray(kinds).astype(str)
    if len(kinds) != len(images):
        msg = f"kinds has {len(kinds)} entries but there are {len(images)} images"
        raise ValueError(msg)
    rng = np.random.default_rng(seed)
    rows = np.unique(kinds)
    fig = Figure(figsize=(1.6 * per_kind + 1.6, 1.6 * len(rows)), layout="constrained")
    axes = fig.subplots(len(rows), per_kind, squeeze=False)
    for r, kind in enumerate(rows):
        idx = np.nonzero(kinds == kind)[0]
        chosen = rng.choice(idx, size=min(per_kind, idx.size), replace=False)
        for c in range(per_kind):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= chosen.size:
                ax.set_axis_off()
                continue
            i = chosen[c]
            ax.imshow(composite_rgb(images[i], bands, stretch=stretch, Q=Q), origin="lower")
            if titles is not None:
                ax.set_title(str(titles[i]), fontsize=6)
        axes[r, 0].set_ylabel(kind.replace("_", " "), fontsize=9)
    return fig


def save_figure(fig, path, **kwargs):
    """Save ``fig`` to ``path`` atomically (format from the suffix)."""
    from pathlib import Path

    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", **kwargs)
    return path


def gallery(images, bands, *, titles=None, ncols=8, stretch=0.08, Q=10.0):
    """Cutouts in the order given (top candidates, anomalies, neighbours), ``ncols`` a row.

    Parameters
    ----------
    images : numpy.ndarray of shape (n, bands, ny, nx)
    bands : sequence of str
    titles : sequence of str, optional
        A caption per cutout.
    ncols : int, optional
    stretch, Q : float, optional
        See :func:`composite_rgb`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    n = len(images)
    if n == 0:
        msg = "gallery needs at least one image"
        raise ValueError(msg)
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig = Figure(figsize=(1.6 * ncols, 1.75 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for k, ax in enumerate(axes.ravel()):
        ax.set_xticks([])
        ax.set_yticks([])
        if k >= n:
            ax.set_axis_off()
            continue
        ax.imshow(composite_rgb(images[k], bands, stretch=stretch, Q=Q), origin="lower")
        if titles is not None:
            ax.set_title(str(titles[k]), fontsize=6)
    return fig
