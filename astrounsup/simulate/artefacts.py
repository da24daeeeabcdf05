"""Instrumental and astrophysical artefacts: the anomalies of the simulated survey.

Each function is deterministic given its parameters and works on one cutout, an array of
shape ``(bands, ny, nx)`` (or ``(ny, nx)`` for one band); the survey simulator draws the
parameters. Light-like artefacts (satellite trails, ghosts) return images in flux units to
be added before the noise; detector artefacts (cosmic rays, saturation and bleeding, NaN
pixels) act on electrons or on the final image.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "bad_column",
    "bleed_columns",
    "cosmic_ray_spot",
    "cosmic_ray_track",
    "ghost_annulus",
    "nan_blob",
    "satellite_trail",
]


def _pixel_coords(ny, nx, pixel_scale):
    y = (np.arange(ny) - (ny - 1) / 2) * pixel_scale
    x = (np.arange(nx) - (nx - 1) / 2) * pixel_scale
    return np.meshgrid(x, y)


def satellite_trail(shape, *, pixel_scale, angle, offset, fwhm, peak, gaps=()):
    """A straight satellite trail crossing the cutout, whole or in segments.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)``.
    pixel_scale : float
        Arcsec per pixel.
    angle : float
        Direction of the trail, radians from +x.
    offset : float
        Perpendicular distance of the trail from the cutout centre, arcsec.
    fwhm : float
        Width of the trail (defocused satellite), arcsec.
    peak : array_like of shape (B,)
        Flux per pixel on the trail's centre line in each band (0: absent from a band, as
        when the satellite crossed during another band's exposures).
    gaps : sequence of (float, float), optional
        ``(centre, length)`` in arcsec along the trail (from the point nearest the cutout
        centre) of stretches without light, as a tumbling or flashing satellite leaves;
        their ends are soft over one ``fwhm``.

    Returns
    -------
    numpy.ndarray of shape (B, ny, nx)
    """
    xx, yy = _pixel_coords(*shape, pixel_scale)
    dist = -np.sin(angle) * xx + np.cos(angle) * yy - offset
    along = np.cos(angle) * xx + np.sin(angle) * yy
    sigma = fwhm / 2.3548
    profile = np.exp(-0.5 * (dist / sigma) ** 2)
    for centre, length in gaps:
        edge = (np.abs(along - centre) - length / 2) / max(sigma, 1e-6)
        profile = profile * (1.0 / (1.0 + np.exp(-edge)))
    return np.asarray(peak, np.float64)[:, None, None] * profile[None]


def ghost_annulus(shape, *, pixel_scale, x0, y0, r_in, r_out, softness, level):
    """A smooth reflection ghost: an annulus of uniform surface brightness.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)``.
    pixel_scale : float
        Arcsec per pixel.
    x0, y0 : float
        Centre of the ghost, arcsec from the cutout centre (may lie outside).
    r_in, r_out : float
        Inner and outer radii, arcsec.
    softness : float
        Width of the edges, arcsec.
    level : array_like of shape (B,)
        Flux per pixel inside the annulus in each band.

    Returns
    -------
    numpy.ndarray of shape (B, ny, nx)
    """
    xx, yy = _pixel_coords(*shape, pixel_scale)
    r = np.hypot(xx - x0, yy - y0)
    ring = 1.0 / (1.0 + np.exp(-(r - r_in) / softness)) / (1.0 + np.exp((r - r_out) / softness))
    return np.asarray(level, np.float64)[:, None, None] * ring[None]


def cosmic_ray_track(shape, *, row, col, angle, length, deposit, curvature=0.0):
    """Pixels hit by a cosmic ray: a sharp track that the PSF never touched.

    A straight track, a single-pixel hit (``length`` 0) or, with ``curvature``, a "worm":
    a low-energy electron scattering on its way through the silicon.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)``.
    row, col : float
        Start of the track, pixels.
    angle : float
        Direction, radians.
    length : float
        Length, pixels (0 is a single-pixel hit).
    deposit : float
        Charge left in each pixel crossed, electrons.
    curvature : float, optional
        Turn of the direction per pixel travelled, radians (0: straight).

    Returns
    -------
    numpy.ndarray of shape (ny, nx)
        Electrons to add.
    """
    ny, nx = shape
    steps = np.arange(0.0, length + 0.5, 0.5)
    heading = angle + curvature * steps
    r = np.rint(row + np.concatenate([[0.0], np.cumsum(0.5 * np.sin(heading[:-1]))])).astype(int)
    c = np.rint(col + np.concatenate([[0.0], np.cumsum(0.5 * np.cos(heading[:-1]))])).astype(int)
    inside = (r >= 0) & (r < ny) & (c >= 0) & (c < nx)
    hit = np.zeros(shape)
    hit[r[inside], c[inside]] = deposit
    return hit


def cosmic_ray_spot(shape, *, row, col, radius, deposit):
    """A compact cluster of hit pixels: a cosmic ray that arrived nearly along the line of
    sight, its charge spread over a few neighbours.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)``.
    row, col : float
        Centre, pixels.
    radius : float
        Radius of the cluster, pixels (0.5-2).
    deposit : float
        Charge in the central pixel, electrons; it falls as a Gaussian of ``radius``.

    Returns
    -------
    numpy.ndarray of shape (ny, nx)
        Electrons to add; 0 beyond ``2 * radius``.
    """
    ny, nx = shape
    rr, cc = np.mgrid[:ny, :nx]
    d2 = (rr - row) ** 2 + (cc - col) ** 2
    spot = deposit * np.exp(-0.5 * d2 / radius**2)
    return np.where(d2 <= (2 * radius) ** 2, spot, 0.0)


def bleed_columns(electrons, full_well):
    """Saturate pixels at ``full_well`` and bleed the excess charge along each column.

    In each column the span from the first to the last pixel above full well holds its charge
    together: it fills to full well and the excess spills, half up and half down, into the
    nearest pixels of that column, filling each to full well. Charge that reaches the edge of
    the cutout is lost, as it is to a real cutout; otherwise charge is conserved.

    Parameters
    ----------
    electrons : numpy.ndarray of shape (..., ny, nx)
        Charge per pixel; modified copy is returned.
    full_well : float
        Saturation level, electrons.

    Returns
    -------
    numpy.ndarray of shape (..., ny, nx)
    """
    e = np.array(electrons, dtype=np.float64, copy=True)
    lead = e.shape[:-2]
    ny, nx = e.shape[-2:]
    flat = e.reshape(-1, ny, nx)
    for img in flat:
        for col in np.nonzero((img > full_well).any(axis=0))[0]:
            column = img[:, col]
            rows = np.nonzero(column > full_well)[0]
            run = slice(rows.min(), rows.max() + 1)
            # The saturated run (with any gaps inside it) is one reservoir of charge.
            total = column[run].sum()
            capacity = full_well * (run.stop - run.start)
            if total <= capacity:
                # The gaps absorb all the excess: the run levels out below full well.
                column[run] = total / (run.stop - run.start)
                continue
            column[run] = full_well
            excess = total - capacity
            # Fill outward from the run, each side receiving half of the excess.
            for side in (column[run.stop :], column[: run.start][::-1]):
                room = np.cumsum(full_well - side)
                before = np.concatenate([[0.0], room[:-1]])
                side += np.clip(excess / 2 - before, 0.0, full_well - side)
    return flat.reshape(*lead, ny, nx)


def nan_blob(shape, *, row, col, radius):
    """Boolean mask of a circular blob of bad pixels, ``(ny, nx)``."""
    ny, nx = shape
    rr, cc = np.mgrid[:ny, :nx]
    return (rr - row) ** 2 + (cc - col) ** 2 <= radius**2


def bad_column(shape, *, col, row_start, row_stop):
    """Boolean mask of a bad column segment ``[row_start, row_stop)`` at ``col``."""
    mask = np.zeros(shape, dtype=bool)
    mask[row_start:row_stop, col] = True
    return mask
