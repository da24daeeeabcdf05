"""Anomaly detectors on the pixels, with no training: straight lines (satellite and bleed
trails), hits sharper than the PSF (cosmic rays, hot pixels), flat faint light off the
object (reflection ghosts, scattered light) and rings around it (ring galaxies).

Each works on every cutout in units of its own sky noise (from the cutout's border), band
by band, so a trail or a hit present in one band only is found as well as one in all:

* :func:`trail_scores`: the images are binned to about 0.5" pixels and summed along
  every straight line across the cutout (``n_angles`` directions, one pixel apart), each
  line cut into ``n_segments`` equal pieces. A trail crosses the whole cutout, so every
  piece is bright; a galaxy, a star or a pair lights one or two. The score of a line is
  the signal-to-noise of its second-faintest piece, pixels clipped at ``clip`` sigma so
  that no single source makes a piece bright; the score of a cutout is its best line.
* :func:`sharp_scores`: the Laplacian of each pixel (its value less the mean of its four
  neighbours) against what the PSF allows. A point source centred on a pixel of a
  Gaussian PSF of width ``sigma`` px keeps a fraction ``1 - exp(-1 / (2 sigma**2))`` of
  its peak in the Laplacian, and anything resolved keeps less; a cosmic ray deposited in
  one pixel keeps all of it. The score is the largest excess ``laplacian - (k + margin) *
  value`` in noise units.
* :func:`ghost_scores`: the light of the bands summed, less its azimuthal median around
  the central object (which removes the object's own round light, however extended), in
  blocks of about 2" x 2". A block counts when its median is 3 sigma above the sky and
  its pixels are as flat as noise (10-90% spread under 1.4 times that of noise): light
  spread evenly over arcseconds with no source in it. The score is the area of such
  blocks, arcsec^2.
* :func:`ring_scores`: the azimuthal median of the smoothed band-summed light on circles
  around the central object, radius 0-4.5". A galaxy's light falls outwards; a ring's
  rises again after a dip. The score is the largest rise over the lowest level inside it,
  in noise units of the smoothed map; the median makes a neighbour on part of a circle
  count for nothing.

Every one is invariant under rotations and reflections of the cutout up to pixel sampling.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from torch.nn import functional

from astrounsup._estimators import check_int, check_number
from astrounsup.features.arcs import (
    _centres,
    _check_images,
    _gaussian_blur,
    _polar,
    _psf_sigma,
)
from astrounsup.noise import estimate_sky

__all__ = [
    "DETECTORS",
    "detector_scores",
    "ghost_scores",
    "ring_scores",
    "sharp_scores",
    "trail_scores",
]

#: The detectors of :func:`detector_scores`.
DETECTORS = ("trail", "sharp", "ghost", "ring")

#: Pixel size the images are binned to before the line search, arcsec.
_TRAIL_PIXEL = 0.5
#: Side of the blocks of :func:`ghost_scores`, arcsec.
_GHOST_BLOCK = 2.0
#: A block of :func:`ghost_scores` counts at this median S/N and under this spread.
_GHOST_SNR, _GHOST_SPREAD = 3.0, 1.4
#: 10-90% spread of unit Gaussian noise.
_NOISE_SPREAD = 2.5631
#: Radii of :func:`ring_scores` (inner, outer, step), arcsec; the central object is
#: searched for within _CENTRE_RADIUS of the cutout centre.
_RING_RADII = (0.0, 4.5, 0.25)
_CENTRE_RADIUS = 1.2
#: Laplacian noise of white noise of unit variance: sqrt(1 + 4 / 16).
_LAPLACIAN_NOISE = math.sqrt(1.25)


def _check_pixel_scale(name, pixel_scale):
    check_number(name, "pixel_scale", pixel_scale, 0.0)
    if not 0.01 <= pixel_scale <= 5.0:
        msg = f"{name}: pixel_scale must be in [0.01, 5] arcsec/px; got {pixel_scale}"
        raise ValueError(msg)


def _unit_noise(x):
    """Sky-subtracted images in units of each band's border noise; masked (non-finite)
    pixels 0. Returns them and the finite mask."""
    finite = torch.isfinite(x)
    sky, noise = estimate_sky(torch.where(finite, x, torch.nan))
    noise = torch.where(torch.isfinite(noise) & (noise > 0), noise, torch.ones_like(noise))
    s = (x - torch.nan_to_num(sky)[..., None, None]) / noise[..., None, None]
    return torch.where(finite, s, torch.zeros_like(s)), finite


def _renormalise(s, valid=None):
    """``s`` divided by its own border noise per image and band (after binning or summing
    correlated pixels the noise is no longer one), measured on the ``valid`` pixels only
    (those with data: a gap filled with zeros would shrink it)."""
    _, noise = estimate_sky(s if valid is None else torch.where(valid, s, torch.nan))
    noise = torch.where(torch.isfinite(noise) & (noise > 0), noise, torch.ones_like(noise))
    return s / noise[..., None, None]


@functools.lru_cache(maxsize=8)
def _line_segments(side, n_angles, n_segments):
    """Sparse (segments, side*side) matrix: row ``j`` sums the pixels of one piece of one
    line divided by the square root of their number. Lines run in ``n_angles`` directions
    over [0, pi), one pixel apart; lines shorter than 60% of the side are left out."""
    c = (side - 1) / 2.0
    t = np.arange(-side, side + 0.25, 0.25)
    rows, cols, vals = [], [], []
    j = 0
    for a in np.arange(n_angles) * (np.pi / n_angles):
        d = np.array([np.cos(a), np.sin(a)])
        normal = np.array([-d[1], d[0]])
        for rho in np.arange(-c, c + 0.5, 1.0):
            # Sampled every quarter pixel, each pixel crossed counted once, in order.
            pts = np.floor(c + 0.5 + rho * normal[None] + t[:, None] * d[None]).astype(int)
            pts = pts[((pts >= 0) & (pts < side)).all(1)]
            flat = pts[:, 0] * side + pts[:, 1]
            _, first = np.unique(flat, return_index=True)
            flat = flat[np.sort(first)]
            if len(flat) < 0.6 * side:
                continue
            for piece in np.array_split(flat, n_segments):
                rows += [j] * len(piece)
                cols += piece.tolist()
                vals += [1.0 / math.sqrt(len(piece))] * len(piece)
                j += 1
    index = torch.as_tensor(np.array([rows, cols]))
    return torch.sparse_coo_tensor(index, torch.as_tensor(vals, dtype=torch.float32),
                                   (j, side * side), check_invariants=True).coalesce()  # fmt: skip


def trail_scores(images, *, bands, pixel_scale, n_angles=48, n_segments=8, clip=10.0,
                 batch_size=256):  # fmt: skip
    """Signal-to-noise of the strongest straight line across each cutout, per band and
    over all bands.

    Parameters
    ----------
    images : array_like of shape (n, bands, ny, nx)
        Calibrated cutouts; NaN pixels are left out. Square cutouts: ny == nx.
    bands : sequence of str
        Band names of axis 1.
    pixel_scale : float
        Arcsec per pixel, in [0.01, 5]: the images are binned by
        ``max(1, round(0.5 / pixel_scale))`` first (less for cutouts smaller than
        ``2 * n_segments`` binned pixels).
    n_angles : int, optional
        Directions searched over [0, 180) degrees, >= 4.
    n_segments : int, optional
        Pieces each line is cut into, >= 2; the second-faintest counts, so a trail may have
        one gap.
    clip : float, optional
        Binned pixels are clipped at this many sigma, > 0.
    batch_size : int, optional

    Returns
    -------
    numpy.ndarray of shape (n, bands + 1), float32
        Column ``b``: the best line's score in band ``b``; the last column: in the sum of
        the bands. About 3-4 for pure noise; higher is more line-like.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> images = rng.normal(0.0, 1.0, (2, 2, 48, 48)).astype(np.float32)
    >>> images[1, 0, :, 20:22] += 3.0  # a 2-px wide line in the first band of the second
    >>> s = trail_scores(images, bands=["g", "r"], pixel_scale=0.25)
    >>> s.shape, bool(s[1, 0] > 3 * s[0, 0]), bool(s[1, 1] < 6)
    ((2, 3), True, True)
    """
    name = "trail_scores"
    _check_pixel_scale(name, pixel_scale)
    check_int(name, "n_angles", n_angles, 4)
    check_int(name, "n_segments", n_segments, 2)
    check_number(name, "clip", clip, 0.0)
    check_int(name, "batch_size", batch_size, 1)
    x = _check_images(images, bands, name, min_bands=1)
    if x.shape[-1] != x.shape[-2]:
        msg = f"{name}: cutouts must be square; got {tuple(x.shape[-2:])} px"
        raise ValueError(msg)
    # Binned to about 0.5" pixels, less where the binned side would fall below two
    # pixels per piece of a line.
    k = max(1, min(round(_TRAIL_PIXEL / pixel_scale), x.shape[-1] // (2 * n_segments)))
    side = x.shape[-1] // k
    if side < 2 * n_segments:
        msg = (f"{name}: cutouts of {x.shape[-1]} px are too small for {n_segments} segments "
               f"per line (at least {2 * n_segments} px)")  # fmt: skip
        raise ValueError(msg)
    lines = _line_segments(side, n_angles, n_segments)
    out = []
    for lo in range(0, len(x), batch_size):
        s, finite = _unit_noise(x[lo : lo + batch_size])
        # A bin has data when all its pixels have: only those measure the binned noise.
        full = functional.avg_pool2d(finite[..., : side * k, : side * k].float(), k) == 1.0
        b = _renormalise(functional.avg_pool2d(s[..., : side * k, : side * k], k) * k, full)
        every = full.all(1, keepdim=True)
        b = torch.cat([b, _renormalise(b.sum(1, keepdim=True), every)], 1).clamp(-clip, clip)
        n, nb = b.shape[:2]
        pieces = torch.sparse.mm(lines, b.flatten(2).reshape(n * nb, -1).T).T
        pieces = pieces.reshape(n, nb, -1, n_segments).sort(-1).values[..., 1]
        out.append(pieces.amax(-1))
    if not out:
        return np.zeros((0, x.shape[1] + 1), np.float32)
    return torch.cat(out).numpy().astype(np.float32)


def _psf_sigma_px(psf_fwhm, n, nb, pixel_scale, name):
    """(n, bands) PSF sigma in px; unknown widths (None or NaN) take one pixel, the
    narrowest PSF of a Nyquist-sampled image."""
    sigma = _psf_sigma(psf_fwhm, n, nb, pixel_scale, name)
    return torch.where(torch.isfinite(sigma), sigma, torch.ones_like(sigma))


def sharp_scores(images, *, bands, pixel_scale, psf_fwhm=None, margin=0.1, batch_size=256):
    """The largest excess of a pixel's Laplacian over what the PSF allows, per band, in
    noise units.

    Parameters
    ----------
    images : array_like of shape (n, bands, ny, nx)
        Calibrated cutouts; NaN pixels are left out (and a pixel with fewer than three
        finite neighbours is not scored).
    bands : sequence of str
    pixel_scale : float
        Arcsec per pixel.
    psf_fwhm : array_like of shape (n, bands) or (bands,), optional
        PSF FWHM per band, arcsec; unknown (None or NaN): a sigma of one pixel.
    margin : float, optional
        Added to the PSF's Laplacian fraction, >= 0: room for a non-Gaussian core and for
        the photon noise of bright sources.
    batch_size : int, optional

    Returns
    -------
    numpy.ndarray of shape (n, bands), float32
        About 3-4 for pure noise; higher is sharper than the PSF.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> yy, xx = np.mgrid[:32, :32]
    >>> star = 200.0 * np.exp(-((yy - 16) ** 2 + (xx - 16) ** 2) / (2 * 1.5**2))
    >>> images = rng.normal(0.0, 1.0, (2, 1, 32, 32)) + star
    >>> images[1, 0, 8, 8] += 60.0  # one hot pixel
    >>> s = sharp_scores(images, bands=["r"], pixel_scale=0.2,
    ...                  psf_fwhm=[1.5 * 2.3548 * 0.2])
    >>> bool(s[0, 0] < 6), bool(s[1, 0] > 30)
    (True, True)
    """
    name = "sharp_scores"
    _check_pixel_scale(name, pixel_scale)
    check_number(name, "margin", margin, 0.0)
    check_int(name, "batch_size", batch_size, 1)
    x = _check_images(images, bands, name, min_bands=1)
    n, nb, ny, nx = x.shape
    sigma = _psf_sigma_px(psf_fwhm, n, nb, float(pixel_scale), name)
    allowed = 1.0 - torch.exp(-1.0 / (2.0 * sigma**2)) + margin
    cross = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])[None, None]
    out = []
    for lo in range(0, n, batch_size):
        s, finite = _unit_noise(x[lo : lo + batch_size])
        m = len(s)
        flat = s.reshape(m * nb, 1, ny, nx)
        ok = finite.reshape(m * nb, 1, ny, nx).to(s.dtype)
        total = functional.conv2d(flat * ok, cross, padding=1)
        count = functional.conv2d(ok, cross, padding=1)
        lap = flat - total / count.clamp_min(1.0)
        excess = (lap - allowed[lo : lo + m].reshape(-1, 1, 1, 1) * flat) / _LAPLACIAN_NOISE
        scored = (count >= 3) & (ok > 0)
        excess = torch.where(scored, excess, torch.full_like(excess, -torch.inf))
        best = excess.flatten(1).amax(1).reshape(m, nb)
        out.append(torch.where(torch.isfinite(best), best, torch.zeros_like(best)))
    if not out:
        return np.zeros((0, nb), np.float32)
    return torch.cat(out).numpy().astype(np.float32)


def _summed(x):
    """Band-summed images in noise units (unit border noise), (n, ny, nx), and whether
    every band of each pixel is finite."""
    s, finite = _unit_noise(x)
    every = finite.all(1)
    return _renormalise(s.sum(1, keepdim=True), every[:, None])[:, 0], every


def _object_centres(total, pixel_scale):
    """Centre of the central object of ``total`` (n, ny, nx), (n, 2) as (y, x) px: the
    peak of the one-pixel-smoothed image within _CENTRE_RADIUS of the cutout centre,
    refined to a fraction of a pixel by a parabola through it and its two neighbours on
    each axis."""
    n, ny, nx = total.shape
    peak = _centres(total, max(_CENTRE_RADIUS / pixel_scale, 1.5), torch.ones(n)).long()
    smooth = _gaussian_blur(total[:, None], torch.ones(n, 1))[:, 0]
    rows = torch.arange(n)
    y, x = peak[:, 0], peak[:, 1]
    centre = smooth[rows, y, x]

    def shift(before, after):
        curve = before - 2 * centre + after
        step = torch.where(curve < 0, 0.5 * (before - after) / curve.clamp(max=-1e-12),
                           torch.zeros_like(curve))  # fmt: skip
        return step.clamp(-0.5, 0.5)

    dy = shift(smooth[rows, (y - 1).clamp(min=0), x], smooth[rows, (y + 1).clamp(max=ny - 1), x])
    dx = shift(smooth[rows, y, (x - 1).clamp(min=0)], smooth[rows, y, (x + 1).clamp(max=nx - 1)])
    return torch.stack([y + dy, x + dx], 1).to(torch.float32)


def _radial_median(total, centres, radii_px, n_angles=128):
    """Azimuthal median of ``total`` on circles of ``radii_px`` around ``centres``, only
    the samples inside the frame and off NaN pixels counted: (n, radii), NaN where a
    circle has none."""
    ny, nx = total.shape[-2:]
    polar = _polar(total, centres, radii_px, n_angles)
    ang = torch.arange(n_angles, dtype=torch.float32) * (2 * math.pi / n_angles)
    r = torch.as_tensor(radii_px, dtype=torch.float32)[None, :, None]
    y = centres[:, 0, None, None] + r * torch.sin(ang)
    x = centres[:, 1, None, None] + r * torch.cos(ang)
    inside = (y >= 0) & (y <= ny - 1) & (x >= 0) & (x <= nx - 1)
    return torch.where(inside, polar, torch.nan).nanmedian(-1).values


def ghost_scores(images, *, bands, pixel_scale, batch_size=256):
    """Area of flat, faint light off the central object's round profile, arcsec^2.

    Parameters
    ----------
    images : array_like of shape (n, bands, ny, nx)
        Calibrated cutouts; NaN pixels are left out.
    bands : sequence of str
    pixel_scale : float
        Arcsec per pixel; blocks are ``round(2 / pixel_scale)`` px on a side.
    batch_size : int, optional

    Returns
    -------
    numpy.ndarray of shape (n,), float32
        0 for most cutouts; a reflection ghost or scattered light covers arcsec^2.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> images = rng.normal(0.0, 1.0, (2, 2, 64, 64))
    >>> yy, xx = np.mgrid[:64, :64]
    >>> disc = np.hypot(yy - 16, xx - 44)
    >>> images[1] += np.where((disc > 4) & (disc < 14), 1.5, 0.0)  # a faint annulus
    >>> s = ghost_scores(images, bands=["g", "r"], pixel_scale=0.25)
    >>> float(s[0]), bool(s[1] > 20)
    (0.0, True)
    """
    name = "ghost_scores"
    _check_pixel_scale(name, pixel_scale)
    check_int(name, "batch_size", batch_size, 1)
    x = _check_images(images, bands, name, min_bands=1)
    n, _, ny, nx = x.shape
    block = max(2, round(_GHOST_BLOCK / pixel_scale))
    by, bx = ny // block, nx // block
    if by == 0 or bx == 0:
        msg = f"{name}: cutouts of {ny}x{nx} px hold no block of {block} px (2 arcsec)"
        raise ValueError(msg)
    radii = np.arange(0.0, math.hypot(ny, nx) + 1.0, 1.0)
    yy, xx = torch.meshgrid(torch.arange(ny), torch.arange(nx), indexing="ij")
    out = []
    for lo in range(0, n, batch_size):
        total, ok = _summed(x[lo : lo + batch_size])
        m = len(total)
        centres = _object_centres(total, pixel_scale)
        # The round profile from the pixels with data only (no data: no light, not sky).
        profile = torch.nan_to_num(
            _radial_median(torch.where(ok, total, torch.nan), centres, radii)
        )
        r = torch.hypot(yy[None] - centres[:, 0, None, None], xx[None] - centres[:, 1, None, None])
        i0 = r.floor().long().clamp(max=len(radii) - 2)
        f = r - i0
        model = (profile.gather(1, i0.flatten(1)).view(m, ny, nx) * (1 - f)
                 + profile.gather(1, (i0 + 1).flatten(1)).view(m, ny, nx) * f)  # fmt: skip
        resid = torch.where(ok, total - model, torch.nan)[:, : by * block, : bx * block]
        blocks = (
            resid.reshape(m, by, block, bx, block).permute(0, 1, 3, 2, 4).reshape(m, by, bx, -1)
        )
        median = blocks.nanmedian(-1).values / (1.2533 / block)  # S/N of the block median
        q = torch.nanquantile(blocks, torch.tensor([0.1, 0.9]), dim=-1)
        spread = torch.nan_to_num((q[1] - q[0]) / _NOISE_SPREAD, nan=math.inf)
        flat = (torch.nan_to_num(median) > _GHOST_SNR) & (spread < _GHOST_SPREAD)
        out.append(flat.flatten(1).sum(1).to(torch.float32) * (block * pixel_scale) ** 2)
    if not out:
        return np.zeros(0, np.float32)
    return torch.cat(out).numpy().astype(np.float32)


def ring_scores(images, *, bands, pixel_scale, batch_size=256):
    """Rise of the azimuthal median light around the central object over the lowest
    level inside it: a ring around a core or a hole, in noise units.

    Parameters
    ----------
    images : array_like of shape (n, bands, ny, nx)
        Calibrated cutouts; NaN pixels (no data) are left out of the profile.
    bands : sequence of str
    pixel_scale : float
        Arcsec per pixel; circles of 0-4.5" every 0.25".
    batch_size : int, optional

    Returns
    -------
    numpy.ndarray of shape (n,), float32
        Near 0 for a galaxy whose light falls outwards; a few for noise.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> yy, xx = np.mgrid[:48, :48] - 23.5
    >>> r = np.hypot(yy, xx)
    >>> galaxy = 40.0 * np.exp(-r / 3.0)
    >>> ring = 40.0 * np.exp(-r / 1.5) + 15.0 * np.exp(-((r - 10.0) ** 2) / 4.0)
    >>> images = rng.normal(0.0, 1.0, (2, 2, 48, 48)) + np.stack([galaxy, ring])[:, None]
    >>> s = ring_scores(images, bands=["g", "r"], pixel_scale=0.25)
    >>> bool(s[0] < 3), bool(s[1] > 10)
    (True, True)
    """
    name = "ring_scores"
    _check_pixel_scale(name, pixel_scale)
    check_int(name, "batch_size", batch_size, 1)
    x = _check_images(images, bands, name, min_bands=1)
    inner, outer, step = _RING_RADII
    radii = np.arange(inner, outer + step / 2, step) / pixel_scale
    out = []
    for lo in range(0, len(x), batch_size):
        total, ok = _summed(x[lo : lo + batch_size])
        m = len(total)
        # Smoothed pixels that a pixel without data reaches are left out of the profile.
        reach = _gaussian_blur((~ok)[:, None].float(), torch.ones(m, 1))[:, 0] > 1e-3
        smooth = _gaussian_blur(total[:, None], torch.ones(m, 1))
        smooth = _renormalise(smooth, ~reach[:, None])[:, 0]
        centres = _object_centres(smooth, pixel_scale)
        measured = torch.where(reach, torch.nan, smooth)
        profile = torch.nan_to_num(_radial_median(measured, centres, radii), nan=-math.inf)
        lowest = torch.cummin(profile, 1).values
        rise = torch.nan_to_num(profile - lowest, nan=0.0, posinf=0.0, neginf=0.0)
        out.append(rise.amax(1))
    if not out:
        return np.zeros(0, np.float32)
    return torch.cat(out).numpy().astype(np.float32)


def detector_scores(images, *, bands, pixel_scale, psf_fwhm=None, detectors=DETECTORS,
                    batch_size=256):  # fmt: skip
    """The ``detectors`` on each cutout, per band and combined.

    Parameters
    ----------
    images : array_like of shape (n, bands, ny, nx)
    bands : sequence of str
    pixel_scale : float
        Arcsec per pixel.
    psf_fwhm : array_like of shape (n, bands) or (bands,), optional
        Arcsec; see :func:`sharp_scores`.
    detectors : sequence of str, optional
        Among :data:`DETECTORS`.
    batch_size : int, optional

    Returns
    -------
    dict of str to numpy.ndarray of shape (n,)
        Those asked for among ``"trail"`` (the best of every band and their sum) with
        ``"trail_<band>"``, ``"sharp"`` (the sharpest band) with ``"sharp_<band>"``,
        ``"ghost"`` and ``"ring"``.

    Examples
    --------
    >>> images = np.random.default_rng(0).normal(size=(3, 2, 32, 32))
    >>> sorted(detector_scores(images, bands=["g", "r"], pixel_scale=0.25))
    ['ghost', 'ring', 'sharp', 'sharp_g', 'sharp_r', 'trail', 'trail_g', 'trail_r']
    """
    unknown = [d for d in detectors if d not in DETECTORS]
    if unknown:
        msg = f"detector_scores: unknown detectors {unknown}; choose among {list(DETECTORS)}"
        raise ValueError(msg)
    options = {"bands": bands, "pixel_scale": pixel_scale, "batch_size": batch_size}
    per_band = {
        "trail": lambda: trail_scores(images, **options),
        "sharp": lambda: sharp_scores(images, psf_fwhm=psf_fwhm, **options),
    }
    out = {}
    for name in (d for d in per_band if d in detectors):
        each = per_band[name]().astype(np.float64)
        out[name] = each.max(1)
        out |= {f"{name}_{b}": each[:, j] for j, b in enumerate(bands)}
    if "ghost" in detectors:
        out["ghost"] = ghost_scores(images, **options).astype(np.float64)
    if "ring" in detectors:
        out["ring"] = ring_scores(images, **options).astype(np.float64)
    return out
