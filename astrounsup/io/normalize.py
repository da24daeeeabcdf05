"""Explicit, invertible normalisation of calibrated cutouts.

Each cutout's sky level and noise are measured per band on its border (sigma-clipped median
and MAD); the flux is then stretched with an asinh whose softening is a number of noise
sigmas, which keeps faint structure linear and compresses bright cores; finally each band is
divided by a robust scale fitted on a training set. The fitted parameters are plain numbers
(``to_dict``/``from_dict``), so a model trained on one survey is applied identically to
another.

Real pixels do not always have a measurable border noise: a flat JPEG-derived sky, a
constant-padded edge, an all-masked border, or a radio image whose background is clipped to
exactly 0 give a noise of 0 (or NaN), and dividing by it would turn the cutout into inf.
Such a cutout (any border noise below ``noise_floor`` times the band's reference, or not
finite) is normalised with the band's reference noise instead, and flagged
(:meth:`AsinhNormalizer.noise_flags`). The reference is the median measured noise of the
band over the fitted cutouts; when no fitted cutout of a band has a measurable noise, it is
a robust scale of the signal (a fifth of the median distance of the non-sky pixels from the
sky) and :meth:`AsinhNormalizer.fit` warns.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from astrounsup._numeric import as_tensor, asinh
from astrounsup.noise import FLUX_ERROR, asinh_pixel_noise, estimate_sky

__all__ = ["AsinhNormalizer"]


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
    noise_floor : float, optional
        A cutout's border noise below this fraction of the band's ``noise_reference_`` (or
        not finite) is replaced by ``noise_reference_`` and flagged, in [0, 1).

    Attributes
    ----------
    scale_ : numpy.ndarray of shape (bands,)
        Fitted per-band scale.
    noise_reference_ : numpy.ndarray of shape (bands,)
        Per-band noise that replaces an unmeasurable border noise, in the units of the
        cutouts.
    noise_source_ : tuple of str
        Per band, ``"border"`` (median border noise of the fitted cutouts) or ``"signal"``
        (no fitted cutout had a measurable noise: a robust scale of the signal).
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

    A cutout with a flat border is normalised with the band's median noise, and flagged:

    >>> x[3] = 0.0
    >>> x[3, :, 16, 16] = 5.0
    >>> bool(np.isfinite(norm.transform(x)).all()), norm.noise_flags(x)[:, 0].nonzero()[0]
    (True, array([3]))
    """

    def __init__(self, *, softening=2.0, border=4, percentile=99.5, noise_floor=0.05):
        self.softening = softening
        self.border = border
        self.percentile = percentile
        self.noise_floor = noise_floor

    def _check_params(self):
        if not (isinstance(self.softening, (int, float)) and self.softening > 0):
            msg = f"softening must be a number > 0 (noise sigmas); got {self.softening!r}"
            raise ValueError(msg)
        if not (isinstance(self.percentile, (int, float)) and 0 < self.percentile <= 100):
            msg = f"percentile must be in (0, 100]; got {self.percentile!r}"
            raise ValueError(msg)
        floor = self.noise_floor
        if not (isinstance(floor, (int, float)) and not isinstance(floor, bool)) or not (
            0 <= floor < 1
        ):
            msg = f"noise_floor must be a fraction in [0, 1) of the band's noise; got {floor!r}"
            raise ValueError(msg)

    def pixel_noise(self, normalized, *, flux_error=FLUX_ERROR):
        """Noise of each pixel of cutouts this normaliser made, in its units: the sky
        noise and ``flux_error`` of the flux (:func:`asinh_pixel_noise`); torch in, torch
        out."""
        y, to_numpy = as_tensor(normalized)
        self._check_fitted(y)
        sigma = asinh_pixel_noise(
            y, softening=self.softening, scale=self.scale_, flux_error=flux_error
        )
        return sigma.numpy() if to_numpy else sigma

    def _unmeasured(self, noise):
        """True where a border noise ``(n, bands)`` is not usable (see the class notes)."""
        ref = torch.as_tensor(self.noise_reference_, dtype=noise.dtype, device=noise.device)
        return ~(torch.isfinite(noise) & (noise > 0) & (noise >= self.noise_floor * ref))

    def _effective(self, sky, noise):
        """Sky and noise that the stretch uses: unusable values replaced (see the notes)."""
        ref = torch.as_tensor(self.noise_reference_, dtype=noise.dtype, device=noise.device)
        noise = torch.where(self._unmeasured(noise), ref.expand_as(noise), noise)
        return torch.nan_to_num(sky, nan=0.0, posinf=0.0, neginf=0.0), noise

    def noise_flags(self, images=None, *, noise=None):
        """Which cutouts and bands have no measurable border noise, ``(n, bands)`` bool.

        Parameters
        ----------
        images : numpy.ndarray or torch.Tensor of shape (n, bands, ny, nx), optional
            Cutouts whose border noise is measured (:func:`estimate_sky`).
        noise : array_like of shape (n, bands), optional
            Border noise already measured, instead of ``images``.

        Returns
        -------
        numpy.ndarray of shape (n, bands), bool
            True where the normalisation used the band's ``noise_reference_``.
        """
        if (images is None) == (noise is None):
            msg = "noise_flags needs exactly one of images or noise="
            raise ValueError(msg)
        if noise is None:
            x, _ = as_tensor(images)
            self._check_fitted(x)
            _, noise = estimate_sky(x, border=self.border)
        noise = torch.as_tensor(np.asarray(noise, dtype=np.float32))
        if noise.ndim != 2:
            msg = f"noise must have shape (n, bands); got {tuple(noise.shape)}"
            raise ValueError(msg)
        self._check_fitted(noise[:, :, None, None])
        return self._unmeasured(noise).numpy()

    def _stretch(self, x, sky, noise):
        sky, noise = self._effective(sky, noise)
        soft = (self.softening * noise).clamp_min(torch.finfo(x.dtype).tiny)
        z = (x - sky[..., None, None]) / soft[..., None, None]
        if z.device.type == "cpu":
            return asinh(z)  # torch's own asinh (and NumPy's) are not vectorised there
        return torch.asinh(z)

    def fit(self, images, y=None):
        """Fit the per-band scales on a sample of cutouts ``(n, bands, ny, nx)``."""
        self._check_params()
        x, _ = as_tensor(images)
        if x.ndim != 4 or x.shape[0] == 0:
            msg = f"images must have shape (n > 0, bands, ny, nx); got {tuple(x.shape)}"
            raise ValueError(msg)
        sky, noise = estimate_sky(x, border=self.border)
        self.n_bands_ = int(x.shape[1])
        self.noise_reference_, self.noise_source_ = _noise_reference(x.float(), sky, noise)
        if np.isnan(self.noise_reference_).any():
            bad = np.nonzero(np.isnan(self.noise_reference_))[0].tolist()
            del self.n_bands_, self.noise_reference_, self.noise_source_
            msg = f"cannot fit scales: band(s) {bad} of the cutouts are constant or empty"
            raise ValueError(msg)
        for b in np.nonzero(np.array(self.noise_source_) == "signal")[0]:
            warnings.warn(
                f"band {b}: no cutout has a measurable border noise; normalising with a "
                f"robust scale of the signal ({self.noise_reference_[b]:.4g}) instead",
                stacklevel=2,
            )
        z = self._stretch(x.float(), sky, noise).transpose(0, 1).reshape(x.shape[1], -1)
        z = torch.where(torch.isfinite(z), z, torch.nan)
        scale = torch.nanquantile(
            z[:, :: max(1, z.shape[1] // 2_000_000)], self.percentile / 100, dim=1
        )
        bad = ~torch.isfinite(scale) | (scale <= 0)
        if bool(bad.any()):
            msg = (
                f"cannot fit scales: band(s) {bad.nonzero().squeeze(1).tolist()} of the "
                f"cutouts are constant or empty (per-band scales {scale.tolist()})"
            )
            del self.n_bands_, self.noise_reference_, self.noise_source_
            raise ValueError(msg)
        self.scale_ = scale.numpy().astype(np.float64)
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
        x, to_numpy = as_tensor(images)
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
        y, to_numpy = as_tensor(normalized)
        self._check_fitted(y)
        sky, noise = torch.as_tensor(sky), torch.as_tensor(noise)
        scale = torch.as_tensor(self.scale_, dtype=torch.float32)
        sky, noise = self._effective(sky.float(), noise.float())
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
            "noise_floor": self.noise_floor,
        }
        if hasattr(self, "scale_"):
            out["scale"] = [float(s) for s in self.scale_]
            out["noise_reference"] = [float(v) for v in self.noise_reference_]
            out["noise_source"] = list(self.noise_source_)
        return out

    @classmethod
    def from_dict(cls, params):
        """Rebuild a normaliser from :meth:`to_dict` output."""
        if params.get("kind") != "asinh":
            msg = f"not an asinh normalisation: kind={params.get('kind')!r}"
            raise ValueError(msg)
        norm = cls(
            softening=params["softening"],
            border=params["border"],
            percentile=params["percentile"],
            noise_floor=params.get("noise_floor", 0.0),
        )
        if "scale" in params:
            for key in ("scale", "noise_reference"):
                values = np.asarray(params[key], dtype=np.float64)
                if not (np.isfinite(values).all() and (values > 0).all()):
                    msg = f"normalization {key} must be finite and > 0 per band; got {values}"
                    raise ValueError(msg)
            norm.scale_ = np.asarray(params["scale"], dtype=np.float64)
            norm.n_bands_ = len(params["scale"])
            norm.noise_reference_ = np.asarray(params["noise_reference"], dtype=np.float64)
            norm.noise_source_ = tuple(params["noise_source"])
        return norm

    def __repr__(self):
        return (
            f"AsinhNormalizer(softening={self.softening!r}, border={self.border!r}, "
            f"percentile={self.percentile!r}, noise_floor={self.noise_floor!r})"
        )


def _noise_reference(x, sky, noise):
    """Per-band reference noise ``(bands,)`` and where it came from (see the module notes)."""
    n_bands = x.shape[1]
    ref = np.empty(n_bands)
    source = []
    for b in range(n_bands):
        good = noise[:, b][torch.isfinite(noise[:, b]) & (noise[:, b] > 0)]
        if good.numel():
            ref[b] = float(torch.median(good))
            source.append("border")
            continue
        dev = (x[:, b] - torch.nan_to_num(sky[:, b], nan=0.0)[:, None, None]).abs()
        dev = dev[torch.isfinite(dev) & (dev > 0)]
        dev = dev[:: max(1, dev.numel() // 2_000_000)]
        ref[b] = float(torch.median(dev)) / 5 if dev.numel() else np.nan
        source.append("signal")
    return ref, tuple(source)
