"""Montages of cutouts as asinh colour composites."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from astrounsup._atomic import atomic_path
from astrounsup.plotting.colour import THUMBNAIL_Q, THUMBNAIL_STRETCH, composite_thumbnails

__all__ = ["composite_rgb", "gallery", "kind_montage", "save_figure"]


def composite_rgb(image, bands, *, pixel_scale=None, stretch=THUMBNAIL_STRETCH, Q=THUMBNAIL_Q):
    """Colour picture of one cutout by the package's one colour rule
    (:mod:`astrounsup.plotting.colour`: one noise scale for every band, asinh stretch).

    Parameters
    ----------
    image : numpy.ndarray of shape (bands, ny, nx)
        Fluxes in one unit for every band; NaN pixels (no data) are shown grey
        (:data:`astrounsup.plotting.NO_DATA_RGB`).
    bands : sequence of str
        Band of each plane, blue first: ``i, r, g`` become red, green and blue when present,
        otherwise the reddest, middle and bluest planes
        (:func:`astrounsup.plotting.rgb_planes`); one band gives a grey image.
    pixel_scale : float, optional
        Arcsec per pixel: a scale bar is drawn when given (None or NaN: none).
    stretch, Q : float, optional
        Linear range of the asinh stretch in sky-noise sigmas, and its softening.

    Returns
    -------
    numpy.ndarray of shape (ny, nx, 3), uint8
        First row at the top of the picture (``imshow`` with its default origin).

    Examples
    --------
    >>> image = np.random.default_rng(0).normal(0.0, 1.0, (3, 32, 32))
    >>> image[:, 14:18, 14:18] += np.array([5.0, 20.0, 80.0])[:, None, None]  # red
    >>> r, g, b = composite_rgb(image, "gri")[16, 16].astype(int)
    >>> bool(r > g > b)
    True
    """
    image = np.asarray(image)
    if image.ndim != 3:
        msg = f"composite_rgb: image must be (bands, ny, nx); got shape {image.shape}"
        raise ValueError(msg)
    return _pictures(image[None], bands, pixel_scale, stretch, Q)[0]


def _pictures(images, bands, pixel_scale, stretch, Q):
    """Pictures of ``images`` by the one colour rule, with a scale bar when the pixel scale
    is known."""
    return composite_thumbnails(
        images, bands=bands, pixel_scale=pixel_scale, stretch=stretch, Q=Q, zoom=1
    )


def kind_montage(images, kinds, bands, *, per_kind=6, pixel_scale=None, stretch=THUMBNAIL_STRETCH,
                 Q=THUMBNAIL_Q, seed=0, titles=None):  # fmt: skip
    """A grid of example cutouts, one row per kind.

    Parameters
    ----------
    images : numpy.ndarray of shape (n, bands, ny, nx)
    kinds : array_like of str, shape (n,)
        The kind of each cutout (rows are the distinct kinds, sorted).
    bands : sequence of str
    per_kind : int, optional
        Columns: examples shown per kind (fewer if a kind has fewer cutouts).
    pixel_scale : float, optional
        Arcsec per pixel: each cutout gets a scale bar when given.
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
    chosen_rows = {kind: rng.choice(np.nonzero(kinds == kind)[0],
                                    size=min(per_kind, int(np.sum(kinds == kind))), replace=False)
                   for kind in rows}  # fmt: skip
    shown = np.concatenate([chosen_rows[k] for k in rows])
    pictures = dict(zip(shown.tolist(), _pictures(np.asarray(images)[shown], bands, pixel_scale,
                                                  stretch, Q), strict=True))  # fmt: skip
    fig = Figure(figsize=(1.6 * per_kind + 1.6, 1.6 * len(rows)), layout="constrained")
    axes = fig.subplots(len(rows), per_kind, squeeze=False)
    for r, kind in enumerate(rows):
        chosen = chosen_rows[kind]
        for c in range(per_kind):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= chosen.size:
                ax.set_axis_off()
                continue
            i = chosen[c]
            ax.imshow(pictures[int(i)])
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


def gallery(images, bands, *, titles=None, ncols=8, pixel_scale=None, stretch=THUMBNAIL_STRETCH,
            Q=THUMBNAIL_Q):  # fmt: skip
    """Cutouts in the order given (top candidates, anomalies, neighbours), ``ncols`` a row.

    Parameters
    ----------
    images : numpy.ndarray of shape (n, bands, ny, nx)
    bands : sequence of str
    titles : sequence of str, optional
        A caption per cutout.
    ncols : int, optional
    pixel_scale : float, optional
        Arcsec per pixel: each cutout gets a scale bar when given.
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
    pictures = _pictures(np.asarray(images), bands, pixel_scale, stretch, Q)
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
        ax.imshow(pictures[k])
        if titles is not None:
            ax.set_title(str(titles[k]), fontsize=6)
    return fig
