"""Explicit, invertible normalisation of calibrated cutouts.

Each cutout's sky level and noise are measured per band on its border (sigma-clipped median
and MAD); the flux is then stretched with an asinh whose softening is a number of noise
sigmas, which keeps faint structure linear and compresses bright cores; finally each band is
divided by a robust scale fitted on a training set. The fitted parameters are plain numbers
(``to_dict``/``from_dict``), so a model trained on one survey is applied identically to
another.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["AsinhNormalizer", "border_pixels", "estimate_sky"]

_MAD_TO_SIGMA = 1.482602218505602


def _as_tensor(images):
    if isinstance(images, torch.Tensor):
        return images, False
    return torch.as_tensor(np.asarray(images, dtype=np.float32)), True


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
    x, to_numpy = _as_tensor(images)
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


class AsinhNormalizer:
    """``asinh((x - sky) / (softening * noise)) / scale_b`` per cutout and band.

    Parameters
    ----------
    softening : float, optional
        The asinh turns from linear to logarithmic at this many noise sigmas, > 0.
    border : int, optional
        Border width for :func:`estimate_sky`.
    percentile : float, optional
        Each band's ``scale_`` is this percentile of the stretched pixels of the fitted
        cutouts, so that bright pixels map near 1, in (0, 100].

    Attributes
    ----------
    scale_ : numpy.ndarray of shape (bands,)
        Fitted per-band scale.
    n_bands_ : int

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> x = rng.normal(0.0, 0.01, (8, 2, 32, 32)).astype("f4")
    >>> x[:, :, 16, 16] += 5.0
    >>> norm = AsinhNormalizer(softening=2.0).fit(x)
    >>> y, sky, noise = norm.transform(x, return_stats=True)
    >>> bool(np.allclose(norm.inverse_transform(y, sky=sky, noise=noise), x, atol=1e-5))
    True
    """

    def __init__(self, *, softening=2.0, border=4, percentile=99.5):
        self.softening = softening
        self.border = border
        self.percentile = percentile

    def _check_params(self):
        if not (isinstance(self.softening, (int, float)) and self.softening > 0):
            msg = f"softening must be a number > 0 (noise sigmas); got {self.softening!r}"
            raise ValueError(msg)
        if not (isinstance(self.percentile, (int, float)) and 0 < self.percentile <= 100):
            msg = f"percentile must be in (0, 100]; got {self.percentile!r}"
            raise ValueError(msg)

    def _stretch(self, x, sky, noise):
        soft = (self.softening * noise).clamp_min(torch.finfo(x.dtype).tiny)
        z = (x - sky[..., None, None]) / soft[..., None, None]
        if z.device.type == "cpu" and not z.requires_grad:
            # NumPy's vectorised arcsinh is several times faster than torch's on the CPU.
            np.arcsinh(z.numpy(), out=z.numpy())
            return z
        return torch.asinh(z)

    def fit(self, images, y=None):
        """Fit the per-band scales on a sample of cutouts ``(n, bands, ny, nx)``."""
        self._check_params()
        x, _ = _as_tensor(images)
        sky, noise = estimate_sky(x, border=self.border)
        z = self._stretch(x.float(), sky, noise).transpose(0, 1).reshape(x.shape[1], -1)
        z = torch.where(torch.isfinite(z), z, torch.nan)
        scale = torch.nanquantile(
            z[:, :: max(1, z.shape[1] // 2_000_000)], self.percentile / 100, dim=1
        )
        if not bool(torch.isfinite(scale).all()) or bool((scale <= 0).any()):
            msg = f"cannot fit scales: the cutouts give per-band scales {scale.tolist()}"
            raise ValueError(msg)
        self.scale_ = scale.numpy().astype(np.float64)
        self.n_bands_ = int(x.shape[1])
        return self

    def _check_fitted(self, x):
        if not hasattr(self, "scale_"):
            from sklearn.exceptions import NotFittedError

            msg = "This AsinhNormalizer is not fitted yet; call fit(images) or from_dict(...)"
            raise NotFittedError(msg)
        if x.shape[1] != self.n_bands_:
            msg = f"fitted on {self.n_bands_} bands but given {x.shape[1]}"
            raise ValueError(msg)

    def transform(self, images, *, sky=None, noise=None, return_stats=False):
        """Normalise cutouts ``(n, bands, ny, nx)``; NaN stays NaN.

        ``sky`` and ``noise`` (n, bands) default to each cutout's own border estimate.
        With ``return_stats`` the call returns ``(normalised, sky, noise)``, what
        :meth:`inverse_transform` needs.
        """
        x, to_numpy = _as_tensor(images)
        self._check_fitted(x)
        if sky is None or noise is None:
            est_sky, est_noise = estimate_sky(x, border=self.border)
            sky = est_sky if sky is None else torch.as_tensor(sky)
            noise = est_noise if noise is None else torch.as_tensor(noise)
        else:
            sky, noise = torch.as_tensor(sky), torch.as_tensor(noise)
        scale = torch.as_tensor(self.scale_, dtype=torch.float32, device=x.device)
        y = self._stretch(x.float(), sky.to(x.device), noise.to(x.device)) / scale[:, None, None]
        if to_numpy:
            y, sky, noise = y.numpy(), sky.numpy(), noise.numpy()
        return (y, sky, noise) if return_stats else y

    def inverse_transform(self, normalized, *, sky, noise):
        """Undo :meth:`transform` given the ``sky`` and ``noise`` it used."""
        y, to_numpy = _as_tensor(normalized)
        self._check_fitted(y)
        sky, noise = torch.as_tensor(sky), torch.as_tensor(noise)
        scale = torch.as_tensor(self.scale_, dtype=torch.float32)
        soft = (self.softening * noise).clamp_min(torch.finfo(torch.float32).tiny)
        x = torch.sinh(y * scale[:, None, None]) * soft[..., None, None] + sky[..., None, None]
        return x.numpy() if to_numpy else x

    def to_dict(self):
        """Parameters and fitted state as JSON-compatible values."""
        out = {
            "kind": "asinh",
            "softening": self.softening,
            "border": self.border,
            "percentile": self.percentile,
        }
        if hasattr(self, "scale_"):
            out["scale"] = [float(s) for s in self.scale_]
        return out

    @classmethod
    def from_dict(cls, params):
        """Rebuild a normaliser from :meth:`to_dict` output."""
        if params.get("kind") != "asinh":
            msg = f"not an asinh normalisation: kind={params.get('kind')!r}"
            raise ValueError(msg)
        norm = cls(
            softening=params["softening"], border=params["border"], percentile=params["percentile"]
        )
        if "scale" in params:
            norm.scale_ = np.asarray(params["scale"], dtype=np.float64)
            norm.n_bands_ = len(params["scale"])
        return norm

    def __repr__(self):
        return (
            f"AsinhNormalizer(softening={self.softening!r}, border={self.border!r}, "
            f"percentile={self.percentile!r})"
        )
