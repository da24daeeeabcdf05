"""The instrument: passbands, Moffat point-spread functions and CCD noise.

Images are in nanomaggies (``nmgy``): a source of AB magnitude ``m`` has total flux
``10**((22.5 - m) / 2.5)`` nmgy. Each band has a photometric zero point ``zeropoint`` (the
AB magnitude that gives 1 ADU in the cutout's effective exposure), a ``gain`` in electrons per
ADU, a read noise in electrons, a sky brightness in mag/arcsec² and a median seeing. The
defaults are DECam-like (wide-survey depth, ``r`` 5-sigma point-source depth ~24.3).

A pixel's observed count is ``Poisson(gain * (model + sky)) / gain + Normal(0, read/gain)``
in ADU; the simulator then subtracts the known sky and converts back to nanomaggies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "BANDS",
    "Band",
    "calibrate",
    "convolve_psf",
    "expose",
    "flux_to_mag",
    "kernel_half_width",
    "mag_to_flux",
    "moffat_alpha",
    "moffat_kernel",
    "render_moffat",
]


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


def mag_to_flux(mag):
    """AB magnitude to nanomaggies.

    Examples
    --------
    >>> float(mag_to_flux(22.5))
    1.0
    """
    return 10.0 ** (0.4 * (22.5 - np.asarray(mag, dtype=np.float64)))


def flux_to_mag(flux):
    """Nanomaggies to AB magnitude (``nan`` for flux <= 0)."""
    flux = np.asarray(flux, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(flux > 0, 22.5 - 2.5 * np.log10(flux), np.nan)


def moffat_alpha(fwhm, beta):
    """Moffat core width ``alpha`` for a given FWHM: ``fwhm / (2 sqrt(2**(1/beta) - 1))``."""
    return fwhm / (2.0 * math.sqrt(2.0 ** (1.0 / beta) - 1.0))


def _moffat_sb(dx, dy, fwhm, beta):
    """Unit-flux Moffat surface brightness at offsets (dx, dy); fwhm broadcasts."""
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


def kernel_half_width(max_fwhm, pixel_scale, *, radius_fwhm=3.0):
    """Half-width in pixels of a PSF kernel reaching ``radius_fwhm`` FWHMs from its centre."""
    return math.ceil(radius_fwhm * max_fwhm / pixel_scale)


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
        Kernel half-width in pixels; default just holds the widest truncated kernel.
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
    needed = kernel_half_width(float(fwhm.max()), pixel_scale, radius_fwhm=radius_fwhm)
    if half_width is None:
        half_width = needed
    size = 2 * half_width + 1
    sub = size * oversample
    coords = (torch.arange(sub, device=device, dtype=torch.float64) - (sub - 1) / 2) * (
        pixel_scale / oversample
    )
    f = fwhm.to(dtype)[..., None, None]
    xs, ys = coords.to(dtype)[None, :], coords.to(dtype)[:, None]
    sb = _moffat_sb(xs, ys, f, beta)
    sb = torch.where(xs * xs + ys * ys <= (radius_fwhm * f) ** 2, sb, 0.0)
    lead = sb.shape[:-2]
    pix = sb.reshape(*lead, size, oversample, size, oversample).mean(dim=(-3, -1))
    return pix / pix.sum(dim=(-2, -1), keepdim=True)


def render_moffat(grid, *, x0, y0, fwhm, flux, beta=3.5):
    """Render point sources seen through Moffat PSFs.

    Parameters
    ----------
    grid : astrounsup.simulate.PixelGrid
        Cutout sampling.
    x0, y0 : torch.Tensor of shape (C,)
        Positions, arcsec from the cutout centre.
    fwhm : torch.Tensor of shape (C, B)
        PSF FWHM per source and band, arcsec.
    flux : torch.Tensor of shape (C, B)
        Total flux per source and band.
    beta : float, optional
        Moffat power index.

    Returns
    -------
    torch.Tensor of shape (C, B, size, size)
        Flux per pixel.
    """
    dx = grid.x[None, None, None, :] - x0[:, None, None, None]
    dy = grid.y[None, None, :, None] - y0[:, None, None, None]
    sb = _moffat_sb(dx, dy, fwhm[:, :, None, None], beta)
    return grid.bin(sb) * flux[:, :, None, None]


def convolve_psf(images, kernels):
    """Convolve each image with its own kernel by FFT.

    The convolution is circular: light leaving one edge re-enters at the other. Callers
    render a margin at least ``half_width`` wide around the region they keep, so that the
    kept region is exact.

    Parameters
    ----------
    images : torch.Tensor of shape (..., H, W)
    kernels : torch.Tensor of shape (..., K, K)
        Odd-sized kernels centred on their middle pixel, ``K <= min(H, W)``.

    Returns
    -------
    torch.Tensor of shape (..., H, W)
    """
    h, w = images.shape[-2:]
    k = kernels.shape[-1]
    if k % 2 == 0 or kernels.shape[-2] != k:
        msg = f"kernels must be square with an odd side; got shape {tuple(kernels.shape)}"
        raise ValueError(msg)
    if k > min(h, w):
        msg = f"kernel side {k} exceeds the image size {(h, w)}"
        raise ValueError(msg)
    half = k // 2
    padded = torch.zeros(*kernels.shape[:-2], h, w, dtype=kernels.dtype, device=kernels.device)
    padded[..., :k, :k] = kernels
    # Put the kernel centre at index (0, 0) so the convolution does not shift the image.
    padded = torch.roll(padded, shifts=(-half, -half), dims=(-2, -1))
    spec = torch.fft.rfft2(images) * torch.fft.rfft2(padded)
    return torch.fft.irfft2(spec, s=(h, w))


def expose(model, *, sky_electrons, electrons_per_nmgy, read_noise, poisson_rng, read_rng):
    """Observe a noise-free model: electrons with Poisson and read noise.

    Parameters
    ----------
    model : numpy.ndarray of shape (n, B, ny, nx)
        Noise-free flux per pixel, nmgy (negative values, e.g. FFT ringing, count as 0).
    sky_electrons : numpy.ndarray of shape (n, B)
        Mean sky electrons per pixel of each cutout and band.
    electrons_per_nmgy : numpy.ndarray of shape (B,)
        Calibration of each band (includes the gain).
    read_noise : numpy.ndarray of shape (B,)
        Read noise per pixel, electrons.
    poisson_rng, read_rng : numpy.random.Generator
        Separate streams for the photon and the read noise.

    Returns
    -------
    numpy.ndarray of shape (n, B, ny, nx), float64
        Electrons per pixel, sky included.
    """
    expected = np.clip(model, 0.0, None) * np.asarray(electrons_per_nmgy)[None, :, None, None]
    expected = expected + np.asarray(sky_electrons)[:, :, None, None]
    electrons = poisson_rng.poisson(expected).astype(np.float64)
    electrons += (
        read_rng.standard_normal(electrons.shape) * np.asarray(read_noise)[None, :, None, None]
    )
    return electrons


def calibrate(electrons, *, sky_electrons, electrons_per_nmgy):
    """Subtract the known sky and convert electrons to nmgy, as float32.

    Parameters
    ----------
    electrons : numpy.ndarray of shape (n, B, ny, nx)
    sky_electrons : numpy.ndarray of shape (n, B)
    electrons_per_nmgy : numpy.ndarray of shape (B,)

    Returns
    -------
    numpy.ndarray of shape (n, B, ny, nx), float32
    """
    sky = np.asarray(sky_electrons)[:, :, None, None]
    scale = np.asarray(electrons_per_nmgy)[None, :, None, None]
    return ((electrons - sky) / scale).astype(np.float32)
