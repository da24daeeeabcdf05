"""Pure, batched augmentation functions on calibrated multi-band cutouts.

Every function takes a batch ``images`` of shape ``(B, C, H, W)`` (fluxes: negative values
are normal, nothing is clipped) on any device, with per-sample parameters as tensors of
shape ``(B,)`` or ``(B, C)``, and is deterministic: the random draws live in the transform
classes of :mod:`astrounsup.transforms`. Geometric functions also move a boolean ``masks``
batch of the same shape with the pixels; ``masks=None`` means nothing is masked, and they
return None for it unless the operation itself masks pixels (``zoom`` out).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812 - the PyTorch convention

from astrounsup._numeric import asinh
from astrounsup.instrument import (
    fft_convolve,
    fft_size,
    gaussian_kernel_1d,
    kernel_half_width,
    moffat_kernel,
)

__all__ = [
    "add_poisson_noise",
    "add_sky_noise",
    "center_crop",
    "check_psf_options",
    "crop",
    "flip",
    "mask_rectangles",
    "psf_degrade",
    "psf_kernel_fwhm",
    "redden",
    "rot90",
    "rotate",
    "scale_flux",
    "scale_stretched_flux",
    "zoom",
]


def _check_batch(images, name="images"):
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        shape = tuple(images.shape) if hasattr(images, "shape") else type(images).__name__
        msg = f"{name} must be a tensor of shape (B, bands, ny, nx); got {shape}"
        raise ValueError(msg)


def _per_sample(value, batch, device, dtype=torch.float32):
    t = torch.as_tensor(value, device=device, dtype=dtype)
    return t.expand(batch) if t.ndim == 0 else t


def _per_band(value, batch, bands, device, dtype=torch.float32):
    t = torch.as_tensor(value, device=device, dtype=dtype)
    if t.ndim == 0:
        return t.expand(batch, bands)
    if t.ndim == 1 and t.shape[0] == bands and batch != bands:
        return t[None, :].expand(batch, bands)
    if t.ndim == 1:
        return t[:, None].expand(batch, bands)
    return t


# --- geometry --------------------------------------------------------------------------


def rot90(images, k, masks=None):
    """Rotate each sample by ``k[b] * 90`` degrees counter-clockwise (lossless).

    Parameters
    ----------
    images : torch.Tensor of shape (B, C, H, W), H == W
    k : torch.Tensor of int, shape (B,)
    masks : torch.Tensor of bool, shape (B, C, H, W), optional

    Returns
    -------
    images, masks : torch.Tensor
    """
    _check_batch(images)
    if images.shape[-1] != images.shape[-2]:
        msg = f"rot90 needs square cutouts; got {tuple(images.shape[-2:])}"
        raise ValueError(msg)
    k = _per_sample(k, images.shape[0], images.device, torch.long) % 4
    move_masks = masks is not None and bool(masks.any())
    out_i = images.clone()
    out_m = masks.clone() if move_masks else masks
    for turns in (1, 2, 3):
        sel = torch.nonzero(k == turns).squeeze(1)
        if sel.numel():
            out_i[sel] = torch.rot90(images[sel], turns, dims=(-2, -1))
            if move_masks:
                out_m[sel] = torch.rot90(masks[sel], turns, dims=(-2, -1))
    return out_i, out_m


def flip(images, horizontal, vertical, masks=None):
    """Mirror samples left-right where ``horizontal[b]`` and top-bottom where ``vertical[b]``."""
    _check_batch(images)
    b = images.shape[0]
    move_masks = masks is not None and bool(masks.any())
    out_i = images.clone()
    out_m = masks.clone() if move_masks else masks
    for flag, dim in ((horizontal, -1), (vertical, -2)):
        sel = torch.nonzero(_per_sample(flag, b, images.device, torch.bool)).squeeze(1)
        if sel.numel():
            out_i[sel] = out_i[sel].flip(dim)
            if move_masks:
                out_m[sel] = out_m[sel].flip(dim)
    return out_i, out_m


def crop(images, top, left, size, masks=None):
    """Per-sample crops of ``size = (h, w)`` with corners ``(top[b], left[b])`` in pixels."""
    _check_batch(images)
    h, w = (size, size) if isinstance(size, int) else size
    b, _, ny, nx = images.shape
    top = _per_sample(top, b, images.device, torch.long)
    left = _per_sample(left, b, images.device, torch.long)
    if bool((top < 0).any() | (left < 0).any() | (top + h > ny).any() | (left + w > nx).any()):
        msg = f"crop of {h}x{w} at the given corners leaves the {ny}x{nx} cutouts"
        raise ValueError(msg)
    rows = top[:, None] + torch.arange(h, device=images.device)
    cols = left[:, None] + torch.arange(w, device=images.device)
    # One gather along the flattened pixels: fast for any mix of per-sample offsets.
    flat = (rows[:, :, None] * nx + cols[:, None, :]).reshape(b, 1, h * w)

    def take(t):
        c = t.shape[1]
        return t.reshape(b, c, ny * nx).gather(2, flat.expand(b, c, h * w)).reshape(b, c, h, w)

    out = take(images)
    if masks is None:
        return out, None
    if not bool(masks.any()):
        return out, masks[..., :h, :w].clone()
    return out, take(masks)


def center_crop(images, size, masks=None):
    """The central ``size x size`` pixels of every sample (size of the same parity)."""
    _check_batch(images)
    ny, nx = images.shape[-2:]
    if size > min(ny, nx) or (ny - size) % 2 or (nx - size) % 2:
        msg = (
            f"center_crop size must be <= {min(ny, nx)} and of the parity of the cutout "
            f"side {ny}x{nx}, so the crop is centred; got {size}"
        )
        raise ValueError(msg)
    t, l_ = (ny - size) // 2, (nx - size) // 2
    return images[..., t : t + size, l_ : l_ + size], (
        None if masks is None else masks[..., t : t + size, l_ : l_ + size]
    )


def _sample_grid(images, grid, masks, mode, *, check_outside=True):
    """Resample ``images`` (and move ``masks``) on ``grid``; masks may stay None when no
    pixel can be masked."""
    out = F.grid_sample(images, grid, mode=mode, padding_mode="zeros", align_corners=True)
    moved = masks is not None and bool(masks.any())
    if not (check_outside or moved):
        return out, None if masks is None else torch.zeros(
            out.shape, dtype=torch.bool, device=out.device
        )
    m = torch.zeros(out.shape, dtype=torch.bool, device=images.device)
    if check_outside:
        # Pixels drawn from outside the cutout are masked.
        ones = torch.ones_like(images[:, :1])
        inside = (
            F.grid_sample(ones, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
            > 1 - 1e-4
        )
        m |= ~inside
    if moved:
        # A pixel is masked if any masked input pixel contributes to it.
        touched = (
            F.grid_sample(
                masks.to(images.dtype),
                grid,
                mode="bilinear",
                padding_mode="zeros",
                align_corners=True,
            )
            > 0
        )
        m |= touched
    return out, m


def _centred_grid(b, size, ny, nx, matrix, device, dtype, offset=None):
    """Sampling grid: output pixel offsets ``o`` from the centre map to input offsets
    ``matrix @ (o + offset)`` from the input centre (pixels; ``offset`` (B, 2) as (x, y)),
    in the normalised coordinates of ``grid_sample`` (``align_corners=True``).

    The grid is affine in the output pixel, so it is built by broadcasting (cheaper than
    ``affine_grid``)."""
    c = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    scale = torch.tensor([(nx - 1) / 2, (ny - 1) / 2], device=device, dtype=dtype)
    m = matrix / scale[None, :, None]  # rows: normalised x, normalised y
    t = (
        torch.zeros(b, 2, device=device, dtype=dtype)
        if offset is None
        else (m @ offset[:, :, None])[..., 0]
    )
    grid = torch.empty(b, size, size, 2, device=device, dtype=dtype)
    for k in (0, 1):
        grid[..., k] = (
            m[:, k, 0, None, None] * c[None, None, :]
            + m[:, k, 1, None, None] * c[None, :, None]
            + t[:, k, None, None]
        )
    return grid


def rotate(
    images, angle, *, size=None, interpolation="bilinear", masks=None, mirror=None, shift=None
):
    """Rotate each sample by ``angle[b]`` degrees counter-clockwise about its centre and
    keep a ``size x size`` window, which the rotated cutout covers entirely.

    Optionally mirror (left-right, before rotating) and move the window by ``shift``
    pixels: rotation, flip and jitter crop in one resampling, which blurs the noise once.

    Parameters
    ----------
    images : torch.Tensor of shape (B, C, H, W)
    angle : torch.Tensor of shape (B,)
        Degrees.
    size : int, optional
        Output side; default ``floor(min(H, W) / sqrt(2))``, valid for every angle.
    interpolation : {"bilinear", "bicubic"}
    masks : torch.Tensor of bool, optional
        Moved with the pixels; an output pixel is masked if a masked input pixel touches it.
    mirror : torch.Tensor of bool, shape (B,), optional
    shift : torch.Tensor of shape (B, 2), optional
        Window offset ``(dx, dy)`` in output pixels.

    Returns
    -------
    images, masks : torch.Tensor of shape (B, C, size, size)
        ``masks`` is None when none was given (nothing can be masked: the window lies
        inside the cutout).

    Raises
    ------
    ValueError
        If the window would reach outside the cutout for some sample.
    """
    _check_batch(images)
    if interpolation not in ("bilinear", "bicubic"):
        msg = f"interpolation must be 'bilinear' or 'bicubic'; got {interpolation!r}"
        raise ValueError(msg)
    b, _, ny, nx = images.shape
    side = min(ny, nx)
    size = math.floor(side / math.sqrt(2)) if size is None else int(size)
    theta = torch.deg2rad(_per_sample(angle, b, images.device, images.dtype))
    cos, sin = torch.cos(theta), torch.sin(theta)
    # Output offset (x, y) samples the input at R(-angle) (x, y): rotation of the content.
    matrix = torch.stack([torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)], -2)
    if mirror is not None:
        sign = 1.0 - 2.0 * _per_sample(mirror, b, images.device, images.dtype)
        matrix = matrix * torch.stack([sign, torch.ones_like(sign)], -1)[:, None, :]
    offset = (
        None if shift is None else torch.as_tensor(shift, device=images.device, dtype=images.dtype)
    )
    # The window's corners must land inside the cutout (pixel centres).
    h = (size - 1) / 2
    corners = torch.tensor(
        [[-h, -h], [-h, h], [h, -h], [h, h]], device=images.device, dtype=images.dtype
    )[None]
    if offset is not None:
        corners = corners + offset[:, None, :]
    reach = (corners @ matrix.transpose(1, 2)).abs()
    limit = torch.tensor([(nx - 1) / 2, (ny - 1) / 2], device=images.device, dtype=images.dtype)
    if bool((reach > limit + 1e-4).any()):
        msg = (
            f"rotate: a {size}x{size} window of a {ny}x{nx} cutout would take pixels from "
            f"outside; use size <= {math.floor(side / math.sqrt(2))} minus twice the shift"
        )
        raise ValueError(msg)
    grid = _centred_grid(b, size, ny, nx, matrix, images.device, images.dtype, offset)
    return _sample_grid(images, grid, masks, interpolation, check_outside=False)


def zoom(images, scale, *, masks=None, interpolation="bilinear"):
    """Magnify each sample by ``scale[b]`` about its centre, conserving flux.

    The output keeps the input's shape. Each output pixel is the mean of the bilinear
    interpolant over its footprint, and magnifying by ``s`` spreads a source over ``s**2``
    times as many pixels, so values are divided by ``s**2``; pixels that come from outside
    the input (``s < 1``) are 0 and masked.
    """
    _check_batch(images)
    b, _, ny, nx = images.shape
    scale = _per_sample(scale, b, images.device, images.dtype)
    if bool((scale <= 0).any()):
        msg = f"zoom scale must be > 0; got {scale.min().item()}"
        raise ValueError(msg)
    if ny != nx:
        msg = f"zoom needs square cutouts; got {ny}x{nx}"
        raise ValueError(msg)
    # Each output pixel averages the interpolated input over its footprint (4x4 samples):
    # point sampling alone aliases and misses the flux of compact sources by a few percent.
    sub = 4
    eye = torch.eye(2, device=images.device, dtype=images.dtype)
    matrix = eye[None] / (scale * sub)[:, None, None]
    grid = _centred_grid(b, ny * sub, ny, nx, matrix, images.device, images.dtype)
    fine, m = _sample_grid(images, grid, masks, interpolation)
    out = F.avg_pool2d(fine, sub)
    m = F.max_pool2d(m.to(images.dtype), sub) > 0
    return out / (scale**2)[:, None, None, None], m


# --- PSF -------------------------------------------------------------------------------


def psf_kernel_fwhm(fwhm_in, fwhm_out):
    """FWHM of the kernel that takes seeing ``fwhm_in`` to ``fwhm_out``:
    ``sqrt(out**2 - in**2)`` (exact for Gaussians).

    Raises
    ------
    ValueError
        If any ``fwhm_out < fwhm_in`` (a PSF cannot be sharpened by convolution).
    """
    fwhm_in, fwhm_out = torch.as_tensor(fwhm_in), torch.as_tensor(fwhm_out)
    if bool((fwhm_in < 0).any()):
        msg = f"fwhm_in must be >= 0; got {fwhm_in.min().item()}"
        raise ValueError(msg)
    if bool((fwhm_out < fwhm_in - 1e-9).any()):
        worst = int(torch.argmax((fwhm_in - fwhm_out).flatten()))
        msg = (
            f"fwhm_out must be >= fwhm_in (convolution only blurs); got fwhm_out="
            f"{fwhm_out.flatten()[worst].item():.4g} < fwhm_in="
            f"{fwhm_in.flatten()[worst].item():.4g}"
        )
        raise ValueError(msg)
    return torch.sqrt(torch.clamp(fwhm_out**2 - fwhm_in**2, min=0.0))


def check_psf_options(*, pixel_scale, kernel):
    """Validate the pixel scale (arcsec, > 0) and the kernel name of a PSF degradation."""
    if not (isinstance(pixel_scale, (int, float)) and pixel_scale > 0):
        msg = f"pixel_scale must be > 0 arcsec; got {pixel_scale!r}"
        raise ValueError(msg)
    if kernel not in ("gaussian", "moffat"):
        msg = f"kernel must be 'gaussian' or 'moffat'; got {kernel!r}"
        raise ValueError(msg)


def psf_degrade(images, fwhm_in, fwhm_out, *, pixel_scale, kernel="gaussian", beta=3.5):
    """Convolve each sample and band so its seeing goes from ``fwhm_in`` to ``fwhm_out``.

    Parameters
    ----------
    images : torch.Tensor of shape (B, C, H, W)
    fwhm_in, fwhm_out : float or torch.Tensor of shape (B,), (C,) or (B, C)
        Arcsec.
    pixel_scale : float
        Arcsec per pixel.
    kernel : {"gaussian", "moffat"}
        Kernel profile, of FWHM ``sqrt(out**2 - in**2)``; sums to 1.
    beta : float, optional
        Moffat index.

    Returns
    -------
    torch.Tensor of shape (B, C, H, W)
        Edges are handled by reflecting the cutout, so no flux wraps around or is lost.
        The Gaussian is applied as two 1-D convolutions (it is separable), the Moffat by
        FFT.
    """
    _check_batch(images)
    check_psf_options(pixel_scale=pixel_scale, kernel=kernel)
    b, c, ny, nx = images.shape
    f_in = _per_band(fwhm_in, b, c, images.device)
    f_out = _per_band(fwhm_out, b, c, images.device)
    k = psf_kernel_fwhm(f_in, f_out).to(images.dtype)
    half = kernel_half_width(k.max(), pixel_scale, profile=kernel)
    if half > min(ny, nx) - 1:
        msg = (
            f"the PSF kernel reaches {half} px, more than the {ny}x{nx} cutouts can "
            "reflect; use larger cutouts or a smaller seeing change"
        )
        raise ValueError(msg)
    padded = F.pad(images, (half, half, half, half), mode="reflect")
    if kernel == "gaussian":
        g = gaussian_kernel_1d(k.reshape(-1), pixel_scale=pixel_scale, half_width=half)
        planes = padded.reshape(1, b * c, *padded.shape[-2:])
        planes = F.conv2d(planes, g.view(b * c, 1, 1, -1), groups=b * c)
        planes = F.conv2d(planes, g.view(b * c, 1, -1, 1), groups=b * c)
        return planes.reshape(b, c, ny, nx)
    safe = torch.where(k > 0, k, torch.ones_like(k))
    kernels = moffat_kernel(
        safe.cpu().double().numpy(),
        pixel_scale=pixel_scale,
        beta=beta,
        half_width=half,
        device=images.device,
        dtype=images.dtype,
    )
    delta = torch.zeros_like(kernels)
    delta[..., half, half] = 1.0
    kernels = torch.where((k > 0)[..., None, None], kernels, delta)
    # Circular wrap-around stays within `half` of the padded edges: the reflected margin.
    size = (fft_size(padded.shape[-2]), fft_size(padded.shape[-1]))
    out = fft_convolve(padded, kernels, size=size)
    return out[..., half : half + ny, half : half + nx].contiguous()


# --- photometry and noise --------------------------------------------------------------


def add_sky_noise(images, sigma, *, generator=None):
    """Add Gaussian noise of standard deviation ``sigma`` ((B,), (C,) or (B, C)) per band."""
    _check_batch(images)
    b, c = images.shape[:2]
    sigma = _per_band(sigma, b, c, images.device, images.dtype)
    if bool((sigma < 0).any()):
        msg = f"noise sigma must be >= 0; got {sigma.min().item()}"
        raise ValueError(msg)
    noise = torch.randn(
        images.shape, generator=generator, device=images.device, dtype=images.dtype
    )
    return images + noise * sigma[..., None, None]


def add_poisson_noise(images, gain, *, generator=None):
    """Add the shot noise of the positive flux: ``gain`` electrons per flux unit (B,)/(C,)."""
    _check_batch(images)
    b, c = images.shape[:2]
    gain = _per_band(gain, b, c, images.device, images.dtype)
    if bool((gain <= 0).any()):
        msg = f"gain must be > 0 electrons per flux unit; got {gain.min().item()}"
        raise ValueError(msg)
    lam = images.clamp_min(0.0) * gain[..., None, None]
    counts = torch.poisson(lam, generator=generator)
    return images + (counts - lam) / gain[..., None, None]


def redden(images, ebv, coefficients):
    """Scale band ``j`` by ``10**(-0.4 * coefficients[j] * ebv[b])``.

    Parameters
    ----------
    images : torch.Tensor of shape (B, C, H, W)
    ebv : torch.Tensor of shape (B,)
        E(B-V), mag.
    coefficients : sequence of float, length C
        ``A_band / E(B-V)``.
    """
    _check_batch(images)
    b, c = images.shape[:2]
    coeff = torch.as_tensor(coefficients, device=images.device, dtype=images.dtype)
    if coeff.shape != (c,):
        msg = f"coefficients must have one value per band ({c}); got shape {tuple(coeff.shape)}"
        raise ValueError(msg)
    ebv = _per_sample(ebv, b, images.device, images.dtype)
    factor = 10.0 ** (-0.4 * coeff[None, :] * ebv[:, None])
    return images * factor[..., None, None]


def scale_flux(images, factors):
    """Multiply each sample and band by ``factors`` ((B,), (C,) or (B, C))."""
    _check_batch(images)
    b, c = images.shape[:2]
    return images * _per_band(factors, b, c, images.device, images.dtype)[..., None, None]


def scale_stretched_flux(images, factors, asinh_scale):
    """Multiply the fluxes under an asinh stretch by ``factors`` (one per sample, (B,)).

    ``images`` are ``asinh(flux / soft) / asinh_scale`` per band, as
    :class:`astrounsup.io.AsinhNormalizer` writes them (``soft``: its softening times the
    cutout's noise; ``asinh_scale``: its ``scale_``, (C,)). The result is
    ``asinh(factor * sinh(asinh_scale * images)) / asinh_scale``: the same stretch of
    ``factor`` times the flux, noise included.
    """
    _check_batch(images)
    b, c = images.shape[:2]
    k = torch.as_tensor(asinh_scale, device=images.device, dtype=images.dtype)
    if k.shape != (c,) or not bool(torch.all(k > 0)):
        msg = (
            f"asinh_scale must be {c} positive values, one per band; got "
            f"{k.detach().cpu().tolist()!r}"
        )
        raise ValueError(msg)
    k = k[None, :, None, None]
    f = _per_sample(factors, b, images.device, images.dtype)[:, None, None, None]
    stretched = f * torch.sinh(k * images)
    # torch's asinh is not vectorised on the CPU
    return (asinh(stretched) if stretched.device.type == "cpu" else torch.asinh(stretched)) / k


def mask_rectangles(shape, top, left, height, width, *, device=None):
    """Boolean masks ``(B, 1, H, W)`` of the union of P rectangles per sample.

    ``top``, ``left``, ``height``, ``width`` are integer tensors of shape (B, P); a
    rectangle of zero height or width masks nothing.
    """
    _, _, ny, nx = shape
    yy = torch.arange(ny, device=device)[None, None, :, None]
    xx = torch.arange(nx, device=device)[None, None, None, :]
    t, l_ = top[..., None, None], left[..., None, None]
    inside = (
        (yy >= t)
        & (yy < t + height[..., None, None])
        & (xx >= l_)
        & (xx < l_ + width[..., None, None])
    )
    return inside.any(dim=1, keepdim=True)
