"""The simulated camera: point sources through the PSF, and CCD exposure noise.

A pixel's observed count is ``Poisson(gain * (model + sky)) / gain + Normal(0, read/gain)``
in ADU; the simulator then subtracts the known sky and converts back to nanomaggies. The
passbands and PSF kernels are those of :mod:`astrounsup.instrument`.
"""

from __future__ import annotations

import numpy as np

from astrounsup.instrument import moffat_profile

__all__ = ["calibrate", "expose", "render_moffat"]


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
