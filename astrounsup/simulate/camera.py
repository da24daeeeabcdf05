"""The simulated camera: point sources through the PSF, and CCD exposure noise.

A pixel's observed count is ``Poisson(gain * (model + sky)) / gain + Normal(0, read/gain)``
in ADU; the simulator then subtracts the known sky and converts back to nanomaggies. The
passbands and PSF kernels are those of :mod:`astrounsup.instrument`.
"""

from __future__ import annotations

import numpy as np

from astrounsup.instrument import moffat_profile

__all__ = ["calibrate", "expose", "render_moffat", "resample_noise"]


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
    sb = moffat_profile(dx, dy, fwhm[:, :, None, None], beta)
    return grid.bin(sb) * flux[:, :, None, None]


def expose(model, *, sky_electrons, electrons_per_nmgy, read_noise, poisson_rng, read_rng):
    """Observe a noise-free model: electrons with Poisson and read noise.

    Parameters
    ----------
    model : numpy.ndarray of shape (n, B, ny, nx)
        Noise-free flux per pixel, nmgy (negative values, e.g. FFT ringing, count as 0).
    sky_electrons : numpy.ndarray of shape (n, B)
        Mean sky electrons per pixel of each cutout and band.
    electrons_per_nmgy : numpy.ndarray of shape (B,) or (n, B)
        Calibration of each band (includes the gain and the exposure time), or of each
        cutout and band (a coadd of a varying number of exposures).
    read_noise : numpy.ndarray of shape (B,) or (n, B)
        Read noise per pixel, electrons.
    poisson_rng, read_rng : numpy.random.Generator
        Separate streams for the photon and the read noise.

    Returns
    -------
    numpy.ndarray of shape (n, B, ny, nx), float64
        Electrons per pixel, sky included.
    """
    expected = np.clip(model, 0.0, None) * _per_cutout(electrons_per_nmgy)
    expected = expected + np.asarray(sky_electrons)[:, :, None, None]
    electrons = poisson_rng.poisson(expected).astype(np.float64)
    electrons += read_rng.standard_normal(electrons.shape) * _per_cutout(read_noise)
    return electrons


def _per_cutout(values):
    """(B,) or (n, B) values broadcast against (n, B, ny, nx) images."""
    v = np.asarray(values, dtype=np.float64)
    return v[None, :, None, None] if v.ndim == 1 else v[:, :, None, None]


def calibrate(electrons, *, sky_electrons, electrons_per_nmgy):
    """Subtract the known sky and convert electrons to nmgy, as float32.

    Parameters
    ----------
    electrons : numpy.ndarray of shape (n, B, ny, nx)
    sky_electrons : numpy.ndarray of shape (n, B)
    electrons_per_nmgy : numpy.ndarray of shape (B,) or (n, B)

    Returns
    -------
    numpy.ndarray of shape (n, B, ny, nx), float32
    """
    sky = np.asarray(sky_electrons)[:, :, None, None]
    return ((electrons - sky) / _per_cutout(electrons_per_nmgy)).astype(np.float32)


def resample_noise(noise, mix):
    """Correlate white noise as resampling a coadd does, keeping its variance.

    Each pixel becomes ``(a x[-1] + x[0] + a x[+1]) / sqrt(1 + 2 a**2)`` along each axis in
    turn (a kernel of unit power, applied periodically so every pixel keeps its variance):
    adjacent pixels then correlate by ``2 a / (1 + 2 a**2)``.

    Parameters
    ----------
    noise : numpy.ndarray of shape (n, B, ny, nx)
        Zero-mean noise.
    mix : numpy.ndarray of shape (n,)
        ``a`` per cutout, in [0, 1).

    Returns
    -------
    numpy.ndarray of shape (n, B, ny, nx)
    """
    a = np.asarray(mix, dtype=np.float64)[:, None, None, None]
    out = np.asarray(noise, dtype=np.float64)
    for axis in (-1, -2):
        out = (out + a * (np.roll(out, 1, axis) + np.roll(out, -1, axis))) / np.sqrt(1 + 2 * a**2)
    return out
