"""What the instrument does to light: passbands, point-spread functions, FFT convolution.

Shared by the simulator (:mod:`astrounsup.simulate`), the augmentations
(:mod:`astrounsup.transforms`) and the training recipes (:mod:`astrounsup.training`), so
that a PSF or a band is defined once.

Fluxes are in nanomaggies (``nmgy``): a source of AB magnitude ``m`` has total flux
``10**((22.5 - m) / 2.5)`` nmgy. Each :class:`Band` has a photometric zero point
``zeropoint`` (the AB magnitude that gives 1 ADU in the cutout's effective exposure), a
``gain`` in electrons per ADU, a read noise in electrons, a sky brightness in mag/arcsec²
and a median seeing. :data:`BANDS` are DECam-like (wide-survey depth, ``r`` 5-sigma
point-source depth ~24.3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from astrounsup._estimators import check_pixel_scale

__all__ = [
    "BANDS",
    "GAUSSIAN_FWHM_PER_SIGMA",
    "PSF_PROFILES",
    "Band",
    "check_pixel_scale",
    "fft_convolve",
    "fft_size",
    "flux_to_mag",
    "gaussian_kernel",
    "gaussian_kernel_1d",
    "kernel_half_width",
    "mag_to_flux",
    "moffat_alpha",
    "moffat_kernel",
    "moffat_profile",
    "reddest_band",
]

#: FWHM of a Gaussian in units of its standard deviation, ``2 sqrt(2 ln 2)``.
GAUSSIAN_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))

#: PSF profiles :func:`kernel_half_width` knows.
PSF_PROFILES = ("moffat", "gaussian")


@dataclass(frozen=True)
class Band:
    """One passband of the simulated camera.

    Attributes
    ----------
    name : str
        Band name.
    wavelength : float
        Effective wavelength, nm.
    zeropoint : float
        AB magnitude giving 1 ADU in the effective exposure.
    gain : float
        Electrons per ADU.
    read_noise : float
        Read noise of the effective exposure, electrons (rms).
    sky_mag : float
        Median sky surface brightness, AB mag/arcsec².
    seeing : float
        Median PSF FWHM, arcsec.
    extinction : float
        ``A_band / E(B-V)`` for a Fitzpatrick (1999) R_V = 3.1 law (Schlafly & Finkbeiner 2011,
        DECam).
    full_well : float, optional
        Electrons a pixel holds before it saturates and bleeds along its column.
    """

    name: str
    wavelength: float
    zeropoint: float
    gain: float
    read_noise: float
    sky_mag: float
    seeing: float
    extinction: float
    full_well: float = 1.3e5

    def electrons_per_nmgy(self):
        """Electrons collected from 1 nmgy of flux in the effective exposure."""
        return self.gain * 10.0 ** (0.4 * (self.zeropoint - 22.5))

    def sky_electrons(self, pixel_scale, sky_mag=None):
        """Mean sky electrons per pixel of side ``pixel_scale`` arcsec."""
        mu = self.sky_mag if sky_mag is None else sky_mag
        return self.gain * 10.0 ** (0.4 * (self.zeropoint - mu)) * pixel_scale**2

    def noise_sigma(self, pixel_scale, sky_mag=None):
        """Standard deviation of a blank sky-subtracted pixel, nmgy."""
        var_e = self.sky_electrons(pixel_scale, sky_mag) + self.read_noise**2
        return np.sqrt(var_e) / self.electrons_per_nmgy()


#: The bands the simulator knows, DECam-like (``g, r, i, z, Y``).
BANDS = {
    b.name: b
    for b in (
        Band("g", 481.0, 30.35, 4.0, 12.0, 22.05, 1.10, 3.237),
        Band("r", 644.0, 30.45, 4.0, 12.0, 21.10, 1.00, 2.176),
        Band("i", 784.0, 30.20, 4.0, 12.0, 20.35, 0.95, 1.595),
        Band("z", 926.0, 29.75, 4.0, 12.0, 19.35, 0.92, 1.217),
        Band("Y", 1009.0, 28.40, 4.0, 12.0, 18.05, 0.90, 1.058),
    )
}


def reddest_band(bands):
    """Index of the longest-wavelength band of ``bands`` (names of :data:`BANDS`, any case:
    HSC's ``y`` is ``Y``).

    Raises
    ------
    ValueError
        A band name not in :data:`BANDS` (naming it).

    Examples
    --------
    >>> reddest_band(["g", "i", "r"])
    1
    """
    bands = [str(b) for b in bands]
    lookup = {k.lower(): v for k, v in BANDS.items()}
    unknown = [b for b in bands if b.lower() not in lookup]
    if unknown:
        msg = (
            f"bands {bands}: the reddest band is known only for {sorted(BANDS)} (not "
            f"{unknown}); name the band whose light to subtract"
        )
        raise ValueError(msg)
    return int(np.argmax([lookup[b.lower()].wavelength for b in bands]))


def mag_to_flux(mag):
    """AB magnitude to nanomaggies.

    Examples
    --------
    >>> float(mag_to_flux(22.5))
    1.0
    """
    return 10.0 ** (0.4 * (22.5 - np.asarray(mag, dtype=np.float64)))


def flux_to_mag(flux):
    """Nanomaggies to AB magnitude (``nan`` for flux <= 0).

    Examples
    --------
    >>> float(flux_to_mag(100.0))
    17.5
    """
    flux = np.asarray(flux, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(flux > 0, 22.5 - 2.5 * np.log10(flux), np.nan)


# --- point-spread functions -------------------------------------------------------------


def moffat_alpha(fwhm, beta):
    """Moffat core width ``alpha`` for a given FWHM: ``fwhm / (2 sqrt(2**(1/beta) - 1))``."""
    return fwhm / (2.0 * math.sqrt(2.0 ** (1.0 / beta) - 1.0))


def moffat_profile(dx, dy, fwhm, beta):
    """Unit-flux Moffat surface brightness at offsets ``(dx, dy)``.

    Parameters
    ----------
    dx, dy : torch.Tensor
        Offsets from the centre, in the unit of ``fwhm`` (e.g. arcsec); broadcast together.
    fwhm : float or torch.Tensor
        Full width at half maximum; broadcasts with the offsets.
    beta : float
        Moffat power index (> 1).

    Returns
    -------
    torch.Tensor
        Flux per unit area; integrates to 1 over the plane.
    """
    alpha = fwhm / (2.0 * math.sqrt(2.0 ** (1.0 / beta) - 1.0))
    r2 = (dx * dx + dy * dy) / (alpha * alpha)
    return (beta - 1.0) / (math.pi * alpha * alpha) * torch.pow(1.0 + r2, -beta)


def _check_fwhm(fwhm, pixel_scale):
    if not bool(torch.all(torch.isfinite(fwhm) & (fwhm > 0))):
        msg = f"PSF FWHM must be finite and > 0 arcsec; got {fwhm.flatten()[:3].tolist()}"
        raise ValueError(msg)
    if not pixel_scale > 0:
        msg = f"pixel_scale must be > 0 arcsec; got {pixel_scale!r}"
        raise ValueError(msg)


def kernel_half_width(fwhm, pixel_scale, *, profile="moffat", radius_fwhm=3.0):
    """Half-width in pixels of a PSF kernel of the given FWHM: how far its light reaches.

    Parameters
    ----------
    fwhm : float or 0-d torch.Tensor
        FWHM of the widest kernel, arcsec (>= 0).
    pixel_scale : float
        Arcsec per pixel.
    profile : {"moffat", "gaussian"}, optional
        A Moffat kernel reaches ``radius_fwhm`` FWHMs (where a ``beta = 3.5`` Moffat has
        < 0.5% of its light left); a Gaussian reaches 4 sigma.
    radius_fwhm : float, optional
        Truncation radius of a Moffat kernel, in FWHMs.

    Returns
    -------
    int
        At least 1.

    Examples
    --------
    >>> kernel_half_width(1.0, 0.263), kernel_half_width(1.0, 0.263, profile="gaussian")
    (12, 7)
    """
    if profile not in PSF_PROFILES:
        msg = f"profile must be one of {list(PSF_PROFILES)}; got {profile!r}"
        raise ValueError(msg)
    if profile == "gaussian":
        reach = 4.0 * float(fwhm / GAUSSIAN_FWHM_PER_SIGMA / pixel_scale)
    else:
        reach = radius_fwhm * float(fwhm) / pixel_scale
    return max(1, math.ceil(reach))


def moffat_kernel(
    fwhm,
    *,
    pixel_scale,
    beta=3.5,
    half_width=None,
    radius_fwhm=3.0,
    oversample=3,
    device=None,
    dtype=torch.float32,
):
    """Pixel-integrated Moffat PSF kernels that sum to 1.

    Each kernel is truncated at ``radius_fwhm`` times its own FWHM (where a ``beta = 3.5``
    Moffat has < 0.5% of its light left) and then normalised, so a kernel does not depend
    on the other kernels it is computed with.

    Parameters
    ----------
    fwhm : array_like of shape (...)
        FWHM of each kernel, arcsec.
    pixel_scale : float
        Pixel size, arcsec.
    beta : float, optional
        Moffat power index (> 1); 3.5 is typical of ground-based seeing wings.
    half_width : int, optional
        Kernel half-width in pixels; default just holds the widest truncated kernel
        (:func:`kernel_half_width`).
    radius_fwhm : float, optional
        Truncation radius in units of each kernel's FWHM.
    oversample : int, optional
        Sub-samples per pixel for the pixel integral.
    device, dtype : optional
        Output placement.

    Returns
    -------
    torch.Tensor of shape (..., 2*half_width+1, 2*half_width+1)
        Kernels centred on the middle pixel, each summing to 1.

    Examples
    --------
    >>> k = moffat_kernel([1.0, 1.4], pixel_scale=0.263)
    >>> k.shape, [round(float(s), 6) for s in k.sum(dim=(-1, -2))]
    (torch.Size([2, 33, 33]), [1.0, 1.0])
    """
    fwhm = torch.as_tensor(np.asarray(fwhm, dtype=np.float64), device=device)
    _check_fwhm(fwhm, pixel_scale)
    if not beta > 1:
        msg = f"Moffat beta must be > 1; got {beta!r}"
        raise ValueError(msg)
    if half_width is None:
        half_width = kernel_half_width(float(fwhm.max()), pixel_scale, radius_fwhm=radius_fwhm)
    size = 2 * half_width + 1
    sub = size * oversample
    coords = (torch.arange(sub, device=device, dtype=torch.float64) - (sub - 1) / 2) * (
        pixel_scale / oversample
    )
    f = fwhm.to(dtype)[..., None, None]
    xs, ys = coords.to(dtype)[None, :], coords.to(dtype)[:, None]
    sb = moffat_profile(xs, ys, f, beta)
    sb = torch.where(xs * xs + ys * ys <= (radius_fwhm * f) ** 2, sb, 0.0)
    lead = sb.shape[:-2]
    pix = sb.reshape(*lead, size, oversample, size, oversample).mean(dim=(-3, -1))
    return pix / pix.sum(dim=(-2, -1), keepdim=True)


def gaussian_kernel_1d(fwhm, *, pixel_scale, half_width):
    """One-dimensional Gaussian kernels sampled at pixel centres, each summing to 1.

    A 2-D Gaussian is separable: convolving with this kernel along both axes equals a 2-D
    convolution with :func:`gaussian_kernel`, at a fraction of the cost.

    Parameters
    ----------
    fwhm : torch.Tensor of shape (...)
        Arcsec; 0 gives a delta function. Its floating dtype and device are kept.
    pixel_scale : float
        Arcsec per pixel.
    half_width : int
        Kernel half-width, pixels.

    Returns
    -------
    torch.Tensor of shape (..., 2 * half_width + 1)

    Examples
    --------
    >>> g = gaussian_kernel_1d(torch.tensor([0.0, 1.0]), pixel_scale=0.263, half_width=2)
    >>> g[0].tolist(), round(float(g[1].sum()), 6)
    ([0.0, 0.0, 1.0, 0.0, 0.0], 1.0)
    """
    fwhm = torch.as_tensor(fwhm)
    if not fwhm.is_floating_point():
        fwhm = fwhm.float()
    sigma = fwhm / GAUSSIAN_FWHM_PER_SIGMA / pixel_scale
    r = torch.arange(-half_width, half_width + 1, dtype=fwhm.dtype, device=fwhm.device)
    g = torch.exp(-(r**2) / (2.0 * sigma**2).clamp_min(1e-12)[..., None])
    return g / g.sum(dim=-1, keepdim=True)


def gaussian_kernel(fwhm, *, pixel_scale, half_width=None):
    """Gaussian kernels sampled at pixel centres and normalised to sum 1.

    Parameters
    ----------
    fwhm : torch.Tensor of shape (...)
        Arcsec; 0 gives a delta function.
    pixel_scale : float
        Arcsec per pixel.
    half_width : int, optional
        Default: :func:`kernel_half_width` of the widest kernel (4 sigma, at least 1).

    Returns
    -------
    torch.Tensor of shape (..., 2 * half_width + 1, 2 * half_width + 1), float32
        The outer product of :func:`gaussian_kernel_1d` with itself.

    Examples
    --------
    >>> k = gaussian_kernel(torch.tensor([0.5, 1.0]), pixel_scale=0.263)
    >>> tuple(k.shape), [round(float(s), 6) for s in k.sum(dim=(-1, -2))]
    ((2, 15, 15), [1.0, 1.0])
    """
    fwhm = torch.as_tensor(fwhm, dtype=torch.float32)
    if half_width is None:
        half_width = (
            kernel_half_width(fwhm.max(), pixel_scale, profile="gaussian") if fwhm.numel() else 1
        )
    g = gaussian_kernel_1d(fwhm, pixel_scale=pixel_scale, half_width=half_width)
    return g[..., :, None] * g[..., None, :]


# --- convolution ------------------------------------------------------------------------


def fft_size(n):
    """The smallest ``2**a 3**b 5**c >= n``: the sizes an FFT handles fastest.

    Examples
    --------
    >>> fft_size(97), fft_size(128), fft_size(129)
    (100, 128, 135)
    """
    best = 1 << (n - 1).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            p235 = p35
            while p235 < n:
                p235 *= 2
            best = min(best, p235)
            p35 *= 3
        p5 *= 5
    return best


def fft_convolve(images, kernels, *, size=None):
    """Convolve each image with its own kernel by FFT.

    The convolution is circular on a grid of ``size`` pixels (the image zero-padded to it):
    light leaving one edge re-enters at the other. Callers keep the result exact by
    rendering, or reflecting, a margin at least ``K // 2`` wide around the region they keep.

    Parameters
    ----------
    images : torch.Tensor of shape (..., H, W)
    kernels : torch.Tensor of shape (..., K, K)
        Odd-sized kernels centred on their middle pixel, broadcasting with ``images``.
    size : tuple of int, optional
        The FFT grid ``(height, width)``, at least ``(H, W)`` and ``(K, K)``; default
        ``(H, W)``. :func:`fft_size` gives fast sizes.

    Returns
    -------
    torch.Tensor of shape (..., H, W)

    Examples
    --------
    >>> image = torch.zeros(1, 15, 15)
    >>> image[0, 7, 7] = 1.0
    >>> out = fft_convolve(image, gaussian_kernel(torch.tensor([0.8]), pixel_scale=0.263))
    >>> round(float(out.sum()), 5), divmod(int(out[0].argmax()), 15)
    (1.0, (7, 7))
    """
    h, w = images.shape[-2:]
    size_y, size_x = (h, w) if size is None else (int(size[0]), int(size[1]))
    k = kernels.shape[-1]
    if k % 2 == 0 or kernels.shape[-2] != k:
        msg = f"kernels must be square with an odd side; got shape {tuple(kernels.shape)}"
        raise ValueError(msg)
    if size_y < h or size_x < w:
        msg = f"size must be at least the image size {(h, w)}; got {(size_y, size_x)}"
        raise ValueError(msg)
    if k > min(size_y, size_x):
        msg = f"kernel side {k} exceeds the FFT grid {(size_y, size_x)}"
        raise ValueError(msg)
    half = k // 2
    padded = torch.zeros(
        *kernels.shape[:-2], size_y, size_x, dtype=kernels.dtype, device=kernels.device
    )
    padded[..., :k, :k] = kernels
    # Put the kernel centre at index (0, 0) so the convolution does not shift the image.
    padded = torch.roll(padded, shifts=(-half, -half), dims=(-2, -1))
    spec = torch.fft.rfft2(images, s=(size_y, size_x)) * torch.fft.rfft2(padded)
    out = torch.fft.irfft2(spec, s=(size_y, size_x))
    return out if (size_y, size_x) == (h, w) else out[..., :h, :w]
