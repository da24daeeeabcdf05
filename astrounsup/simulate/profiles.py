"""Surface-brightness profiles rendered onto pixel grids.

All angles on the sky are in arcseconds, measured from the centre of the cutout with ``x``
along increasing column index and ``y`` along increasing row index. Position angles ``phi``
are radians counter-clockwise from the ``+x`` axis. Fluxes are in any linear unit (the
survey simulator uses nanomaggies); a rendered image holds the flux falling in each pixel,
so its sum is the total flux inside the cutout.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.special import gammaincinv, gammaln

__all__ = [
    "PixelGrid",
    "render_sersic",
    "sersic_b",
    "sersic_enclosed_fraction",
    "sersic_log_norm",
]


def sersic_b(n):
    """Return the Sérsic constant :math:`b_n`, exact to machine precision.

    :math:`b_n` is defined by :math:`\\gamma(2n, b_n) = \\Gamma(2n)/2`, so that the
    half-light radius encloses half of the total flux.

    Parameters
    ----------
    n : float or array_like
        Sérsic index, > 0.

    Returns
    -------
    numpy.ndarray or float
        :math:`b_n`, same shape as ``n``.

    Examples
    --------
    >>> round(float(sersic_b(4.0)), 4)
    7.6692
    """
    n = np.asarray(n, dtype=np.float64)
    if np.any(n <= 0):
        msg = f"Sérsic index n must be > 0; got {n[n <= 0].ravel()[:3]}"
        raise ValueError(msg)
    return gammaincinv(2.0 * n, 0.5)


def sersic_log_norm(n, r_e, q):
    """Return the natural log of the total flux of a Sérsic profile with :math:`I_e = 1`.

    The profile is :math:`I(R) = I_e \\exp\\{-b_n[(R/r_e)^{1/n} - 1]\\}` with the elliptical
    radius :math:`R^2 = x'^2 + y'^2/q^2` (``r_e`` is the semi-major half-light radius), whose
    total flux is :math:`2\\pi n q r_e^2 I_e e^{b_n} b_n^{-2n} \\Gamma(2n)`.

    Parameters
    ----------
    n, r_e, q : array_like
        Sérsic index, half-light semi-major axis (arcsec) and axis ratio ``b/a``.

    Returns
    -------
    numpy.ndarray
        ``log(total flux / I_e)`` in ``log(arcsec**2)``.
    """
    n = np.asarray(n, dtype=np.float64)
    b = sersic_b(n)
    return (
        np.log(2.0 * np.pi * n * np.asarray(q) * np.asarray(r_e) ** 2)
        + b
        - 2.0 * n * np.log(b)
        + gammaln(2.0 * n)
    )


def sersic_enclosed_fraction(radius, *, n, r_e):
    """Fraction of a Sérsic profile's flux inside elliptical radius ``radius``.

    Parameters
    ----------
    radius : array_like
        Elliptical (semi-major) radius, same unit as ``r_e``.
    n : float
        Sérsic index.
    r_e : float
        Half-light semi-major axis.

    Returns
    -------
    numpy.ndarray
        :math:`\\gamma(2n, b_n (R/r_e)^{1/n}) / \\Gamma(2n)`.

    Examples
    --------
    >>> round(float(sersic_enclosed_fraction(1.0, n=1.0, r_e=1.0)), 6)
    0.5
    """
    from scipy.special import gammainc

    b = sersic_b(n)
    return gammainc(2.0 * n, b * (np.asarray(radius, dtype=np.float64) / r_e) ** (1.0 / n))


class PixelGrid:
    """Sub-pixel sampling of a square cutout.

    Parameters
    ----------
    size : int
        Number of pixels on a side.
    pixel_scale : float
        Pixel size in arcsec.
    oversample : int, optional
        Sub-samples per pixel along each axis; pixel values are the mean of the
        sub-samples times the pixel area, which approximates the pixel integral.
    device, dtype : optional
        Where and in which precision the coordinates live.

    Examples
    --------
    >>> grid = PixelGrid(4, pixel_scale=0.5, oversample=1)
    >>> grid.x.tolist()
    [-0.75, -0.25, 0.25, 0.75]
    """

    def __init__(self, size, *, pixel_scale, oversample=1, device=None, dtype=torch.float32):
        if int(size) != size or size < 1:
            msg = f"size must be a positive integer; got {size!r}"
            raise ValueError(msg)
        if int(oversample) != oversample or oversample < 1:
            msg = f"oversample must be a positive integer; got {oversample!r}"
            raise ValueError(msg)
        if not pixel_scale > 0:
            msg = f"pixel_scale must be > 0 arcsec; got {pixel_scale!r}"
            raise ValueError(msg)
        self.size = int(size)
        self.pixel_scale = float(pixel_scale)
        self.oversample = int(oversample)
        sub = self.size * self.oversample
        step = self.pixel_scale / self.oversample
        # Sub-pixel centres, symmetric about the cutout centre.
        coords = (torch.arange(sub, device=device, dtype=torch.float64) - (sub - 1) / 2) * step
        self.x = coords.to(dtype)
        self.y = coords.to(dtype)

    @property
    def pixel_area(self):
        """Area of one pixel in arcsec²."""
        return self.pixel_scale**2

    def bin(self, surface_brightness):
        """Integrate sub-sampled surface brightness into pixel fluxes.

        Parameters
        ----------
        surface_brightness : torch.Tensor of shape (..., size*oversample, size*oversample)
            Flux per arcsec² at the sub-pixel centres.

        Returns
        -------
        torch.Tensor of shape (..., size, size)
            Flux in each pixel.
        """
        o = self.oversample
        if o == 1:
            return surface_brightness * self.pixel_area
        lead = surface_brightness.shape[:-2]
        sb = surface_brightness.reshape(-1, 1, *surface_brightness.shape[-2:])
        binned = torch.nn.functional.avg_pool2d(sb, o)
        return binned.reshape(*lead, self.size, self.size) * self.pixel_area


def _elliptical_radius2(x, y, x0, y0, q, phi):
    """Squared semi-major elliptical radius, shape (C, H, W).

    ``x`` and ``y`` are either the shared grid axes, of shapes (1, 1, W) and (1, H, 1), or
    full per-component coordinate maps (C, H, W). For the shared grid the quadratic form
    is expanded so that only one product is evaluated at full size.
    """
    c, s = torch.cos(phi)[:, None, None], torch.sin(phi)[:, None, None]
    inv_q2 = (1.0 / (q * q))[:, None, None]
    a = c * c + s * s * inv_q2
    b = 2.0 * c * s * (1.0 - inv_q2)
    d = s * s + c * c * inv_q2
    dx = x - x0[:, None, None]
    dy = y - y0[:, None, None]
    if dx.shape[-2] == 1 and dy.shape[-1] == 1:
        return (a * dx * dx) + (d * dy * dy) + (b * dy) * dx
    return a * dx * dx + d * dy * dy + b * dx * dy


def _sersic_sb(radius2, *, r_e, n, log_amp, b):
    """Surface brightness exp(log_amp - b (R/r_e)^(1/n)) from the squared radius R²."""
    inv_2n = (0.5 / n)[:, None, None]
    scaled = torch.clamp(radius2 / (r_e * r_e)[:, None, None], min=1e-24)
    return torch.exp(log_amp[:, None, None] - b[:, None, None] * torch.pow(scaled, inv_2n))


def render_sersic(
    grid, *, x0, y0, r_e, n, q, phi, flux=None, source_x=None, source_y=None, cusp_refine=True
):
    """Render elliptical Sérsic profiles into pixel fluxes.

    Parameters
    ----------
    grid : PixelGrid
        The cutout sampling.
    x0, y0 : array_like of shape (C,)
        Profile centres in arcsec from the cutout centre (source-plane coordinates when
        ``source_x``/``source_y`` are given).
    r_e : array_like of shape (C,)
        Half-light semi-major axes, arcsec.
    n : array_like of shape (C,)
        Sérsic indices.
    q : array_like of shape (C,)
        Axis ratios in (0, 1].
    phi : array_like of shape (C,)
        Position angles of the major axes, radians from +x.
    flux : array_like of shape (C,), optional
        Total fluxes (to infinity). Default 1, i.e. unit-flux profiles.
    source_x, source_y : torch.Tensor of shape (C, H*o, W*o), optional
        Source-plane coordinates of each sub-pixel (ray-traced through a lens). When given the
        profile is evaluated there, which renders the lensed image; surface brightness is
        conserved by lensing so no Jacobian enters.
    cusp_refine : bool, optional
        Re-integrate the 3x3 pixels around each (unlensed) centre on a 15x finer sub-grid,
        so that cuspy high-``n`` profiles keep their flux when the grid is coarse.

    Returns
    -------
    torch.Tensor of shape (C, size, size)
        Flux in each pixel.

    Examples
    --------
    >>> grid = PixelGrid(101, pixel_scale=0.2, oversample=2)
    >>> img = render_sersic(grid, x0=[0.0], y0=[0.0], r_e=[0.8], n=[1.0], q=[0.7], phi=[0.3])
    >>> round(float(img.sum()), 3)
    1.0
    """
    dtype, device = grid.x.dtype, grid.x.device
    n64 = np.atleast_1d(np.asarray(n, dtype=np.float64))
    r_e64 = np.atleast_1d(np.asarray(r_e, dtype=np.float64))
    q64 = np.atleast_1d(np.asarray(q, dtype=np.float64))
    flux64 = np.ones_like(n64) if flux is None else np.atleast_1d(np.asarray(flux, np.float64))
    if np.any(q64 <= 0) or np.any(q64 > 1):
        msg = f"axis ratio q must be in (0, 1]; got {q64[(q64 <= 0) | (q64 > 1)][:3]}"
        raise ValueError(msg)
    if np.any(r_e64 <= 0):
        msg = f"half-light radius r_e must be > 0 arcsec; got {r_e64[r_e64 <= 0][:3]}"
        raise ValueError(msg)
    b64 = sersic_b(n64)
    # log I_e for the requested total flux; computed in float64 because b_n reaches ~20.
    with np.errstate(divide="ignore"):
        log_amp64 = np.log(flux64) - sersic_log_norm(n64, r_e64, q64) + b64

    def t(a):
        return torch.as_tensor(np.asarray(a, dtype=np.float64), device=device).to(dtype)

    x0_t, y0_t, r_e_t, n_t, q_t, phi_t = map(t, (x0, y0, r_e64, n64, q64, phi))
    x0_t, y0_t, phi_t = (torch.atleast_1d(a) for a in (x0_t, y0_t, phi_t))
    b_t, log_amp_t = t(b64), t(log_amp64)
    if source_x is None:
        xs, ys = grid.x[None, None, :], grid.y[None, :, None]
    else:
        xs, ys = source_x, source_y
    radius2 = _elliptical_radius2(xs, ys, x0_t, y0_t, q_t, phi_t)
    sb = _sersic_sb(radius2, r_e=r_e_t, n=n_t, log_amp=log_amp_t, b=b_t)
    image = grid.bin(sb)
    if cusp_refine and source_x is None:
        image = _refine_centres(image, grid, x0_t, y0_t, r_e_t, n_t, q_t, phi_t, log_amp_t, b_t)
    return image


_REFINE_PIXELS = 3  # block of pixels around a centre that is re-integrated
_REFINE_SUB = 15  # sub-samples per pixel inside that block


def _refine_centres(image, grid, x0, y0, r_e, n, q, phi, log_amp, b):
    """Replace the pixels around each profile centre by a finer integral."""
    size, ps = grid.size, grid.pixel_scale
    half = _REFINE_PIXELS // 2
    # Pixel index holding each centre; blocks that would leave the cutout are skipped.
    col = torch.round(x0 / ps + (size - 1) / 2).long()
    row = torch.round(y0 / ps + (size - 1) / 2).long()
    inside = (col >= half) & (col < size - half) & (row >= half) & (row < size - half)
    if not bool(inside.any()):
        return image
    idx = torch.nonzero(inside).squeeze(1)
    sub = _REFINE_PIXELS * _REFINE_SUB
    step = ps / _REFINE_SUB
    offs = (torch.arange(sub, device=image.device, dtype=image.dtype) + 0.5) * step
    # Sub-sample coordinates of each block: (K, sub) along x and y.
    x_start = (col[idx] - half - (size - 1) / 2).to(image.dtype) * ps - ps / 2
    y_start = (row[idx] - half - (size - 1) / 2).to(image.dtype) * ps - ps / 2
    xs = (x_start[:, None] + offs[None, :])[:, None, :]
    ys = (y_start[:, None] + offs[None, :])[:, :, None]
    radius2 = _elliptical_radius2(xs, ys, x0[idx], y0[idx], q[idx], phi[idx])
    sb = _sersic_sb(radius2, r_e=r_e[idx], n=n[idx], log_amp=log_amp[idx], b=b[idx])
    k = idx.numel()
    block = sb.reshape(k, _REFINE_PIXELS, _REFINE_SUB, _REFINE_PIXELS, _REFINE_SUB)
    block = block.mean(dim=(2, 4)) * grid.pixel_area
    image = image.clone()
    rows = (
        row[idx][:, None, None] + torch.arange(-half, half + 1, device=image.device)[None, :, None]
    )
    cols = (
        col[idx][:, None, None] + torch.arange(-half, half + 1, device=image.device)[None, None, :]
    )
    image[idx[:, None, None], rows, cols] = block
    return image
