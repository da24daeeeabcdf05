"""The pixel-noise model of calibrated cutouts: the sky level and noise measured on each
cutout's border, and the noise of each pixel after an asinh stretch.

It sits below reading (:mod:`astrounsup.io`), augmentation (:mod:`astrounsup.transforms`)
and the models (:mod:`astrounsup.models`), which all measure or weigh pixels by it.
"""

from __future__ import annotations

import numpy as np
import torch

from astrounsup._estimators import check_number
from astrounsup._numeric import as_tensor

__all__ = ["FLUX_ERROR", "asinh_pixel_noise", "border_pixels", "estimate_sky"]

_MAD_TO_SIGMA = 1.482602218505602


#: Relative flux error that :func:`asinh_pixel_noise` adds to the sky noise by default.
FLUX_ERROR = 0.1


def estimate_sky(images, *, border=4, clip=3.0, iters=3):
    """Per-band sky level and noise of each cutout from its sigma-clipped border.

    Parameters
    ----------
    images : numpy.ndarray or torch.Tensor of shape (n, bands, ny, nx)
        NaN/inf pixels are ignored.
    border : int, optional
        Width of the frame of pixels used, > 0.
    clip : float, optional
        Pixels further than ``clip`` robust sigmas from the median are rejected, ``iters``
        times, so that sources touching the border do not bias the sky.
    iters : int, optional

    Returns
    -------
    sky, noise : same type as ``images``, shape (n, bands)
        Median and ``1.4826 * MAD`` of the clipped border pixels; NaN where a band's border
        has no finite pixel.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> sky, noise = estimate_sky(rng.normal(5.0, 2.0, (1, 1, 64, 64)))
    >>> round(float(sky[0, 0]), 1), round(float(noise[0, 0]), 1)
    (5.0, 2.0)
    """
    x, to_numpy = as_tensor(images)
    frame = border_pixels(x, border=border)
    for _ in range(iters):
        med = _nanmedian(frame)[..., None]
        mad = _nanmedian((frame - med).abs())[..., None] * _MAD_TO_SIGMA
        frame = torch.where((frame - med).abs() <= clip * mad.clamp_min(1e-30), frame, torch.nan)
    sky = _nanmedian(frame)
    noise = _nanmedian((frame - sky[..., None]).abs()) * _MAD_TO_SIGMA
    if to_numpy:
        return sky.numpy(), noise.numpy()
    return sky, noise


def _nanmedian(x):
    """``torch.nanmedian(x, dim=-1).values``: the lower middle value of the non-NaN entries
    of the last axis, NaN where there are none. On the CPU through NumPy's sort, which is
    several times faster there than torch's median kernels."""
    if x.device.type != "cpu" or x.requires_grad:
        return torch.nanmedian(x, dim=-1).values
    ordered = np.sort(x.numpy(), axis=-1)  # NaN sort last
    count = (~np.isnan(ordered)).sum(axis=-1)
    middle = np.take_along_axis(ordered, (np.maximum(count, 1) - 1)[..., None] // 2, axis=-1)
    return torch.from_numpy(np.where(count > 0, middle[..., 0], np.nan).astype(ordered.dtype))


def asinh_pixel_noise(normalized, *, softening, scale, flux_error=FLUX_ERROR):
    """The noise of each pixel of asinh-normalised cutouts, in normalised units: the sky
    noise and, in quadrature, ``flux_error`` times the pixel's own flux.

    A pixel ``y = asinh(z) / c`` with ``z = (x - sky) / (softening * noise)`` moves by
    ``dy = dz / (c * cosh(c * y))`` for a change ``dz``. One sigma of the sky,
    ``dz = 1 / softening``, is therefore ``1 / (softening * c * cosh(c * y))``: the same on
    the sky of a deep and of a shallow cutout (the normalisation divided each by its own
    noise), and ever smaller where the stretch compresses bright light. The sky alone
    would make a bright core's pixels weigh ``cosh(c * y)**2`` times a sky pixel (3e5
    for ``c * y = 7``), so a reconstruction likelihood would fit the cores and give up
    the sky, and every chi-square would measure how bright an object is. The share
    ``flux_error`` of the flux, ``dz = flux_error * |z|``, stands for what the sky noise
    leaves out on bright light: the sources' own photon noise, PSF and calibration
    mismatch, and what a model with a few dozen latent numbers cannot reproduce. Together,
    ``sqrt((1 / (softening * cosh(c y)))**2 + (flux_error * tanh(c y))**2) / c``: the sky
    noise on faint pixels, ``flux_error / c`` on bright ones (a fixed relative error).

    Parameters
    ----------
    normalized : torch.Tensor of shape (n, bands, ny, nx)
    softening : float
        The normaliser's ``softening``.
    scale : sequence of float of shape (bands,)
        The normaliser's ``scale_``.
    flux_error : float, optional
        Relative flux error added in quadrature, >= 0 (0: the sky noise alone,
        background-limited).

    Returns
    -------
    torch.Tensor of shape (n, bands, ny, nx)

    Examples
    --------
    >>> sigma = asinh_pixel_noise(torch.zeros(1, 2, 4, 4), softening=2.0, scale=[4.0, 5.0])
    >>> sigma[0, :, 0, 0].tolist()
    [0.125, 0.10000000149011612]
    >>> bright = asinh_pixel_noise(torch.full((1, 1, 1, 1), 3.0), softening=2.0, scale=[4.0])
    >>> round(bright.item(), 4)  # flux_error / c
    0.025
    """

    check_number("asinh_pixel_noise", "flux_error", flux_error, 0.0)
    c = torch.as_tensor(np.asarray(scale, dtype=np.float32), device=normalized.device)
    c = c.to(normalized.dtype)[None, :, None, None]
    arg = (normalized * c).abs().clamp(max=30.0)
    sky = 1.0 / (float(softening) * torch.cosh(arg))
    return torch.sqrt(sky**2 + (float(flux_error) * torch.tanh(arg)) ** 2) / c


def border_pixels(images, *, border=4):
    """The frame of ``border`` pixels of each cutout and band, float32 ``(n, bands, P)``,
    with NaN for every non-finite pixel."""
    if images.ndim != 4:
        msg = f"images must have shape (n, bands, ny, nx); got {tuple(images.shape)}"
        raise ValueError(msg)
    ny, nx = images.shape[-2:]
    if not 0 < border <= min(ny, nx) // 2:
        msg = f"border must be in [1, {min(ny, nx) // 2}] px for {ny}x{nx} cutouts; got {border}"
        raise ValueError(msg)
    frame = torch.cat(
        [
            images[..., :border, :].flatten(-2),
            images[..., -border:, :].flatten(-2),
            images[..., border:-border, :border].flatten(-2),
            images[..., border:-border, -border:].flatten(-2),
        ],
        dim=-1,
    ).float()
    return torch.where(torch.isfinite(frame), frame, torch.nan)
