"""Blue light around a red galaxy: lens-light-subtracted colour residuals and
rotation-invariant arc features, computed from the pixels without any training.

A strong lens is a red early-type galaxy with blue light (the lensed source: an arc, a
ring or two to four images) at about the Einstein radius, 0.5-3", at any position angle.
Per cutout:

1. the sky (border median) is subtracted and the bands are blurred to the broadest PSF of
   the cutout (``psf_fwhm``; without it the bands are used as they are);
2. the centre is the peak of the reddest band, smoothed, within ``centre_radius`` of the
   cutout centre;
3. each bluer band ``b`` loses the red band scaled to its flux in the core (radius
   ``core_radius``): ``b - a_b * red`` with ``a_b = sum(b * red) / sum(red**2)``. The lens
   galaxy's own light cancels where its colour is the same across it, and what stays is
   light bluer than the lens: :func:`lens_light_residuals`;
4. the residuals, each in units of its own noise (from the cutout's border), are summed
   into one blue signal-to-noise map, smoothed with the PSF (the matched filter of an
   unresolved knot) and sampled on circles around the centre;
5. per circle: the mean, the amplitudes of the angular Fourier modes 1-4 (rotating the
   cutout changes only their phases), the mean of the brightest quarter, the share above
   2 sigma, and the longest arc and the number of separate arcs above 1.5 sigma. Signal
   amounts are compressed with ``asinh`` so that a bright neighbour does not outweigh the
   rest. The core colours ``a_b`` close the vector.

Every feature is unchanged by rotations and reflections of the cutout about the centre,
up to pixel sampling. :func:`arc_score` is a lens-likeness from them with no labels: the
signal-to-noise of the strongest tangentially extended blue light at one radius.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from sklearn.base import BaseEstimator
from torch.nn import functional

from astrounsup._estimators import check_int, check_number
from astrounsup.instrument import GAUSSIAN_FWHM_PER_SIGMA, reddest_band
from astrounsup.noise import estimate_sky

__all__ = ["ArcFeatures", "arc_score", "lens_light_residuals"]

#: Thresholds of the arc runs along a circle, in sigma of the smoothed blue map.
_RUN_SIGMA = 1.5
_HIGH_SIGMA = 2.0


def _check_images(images, bands, name, min_bands=2):
    x = torch.as_tensor(np.asarray(images, dtype=np.float32))
    if x.ndim != 4:
        msg = f"{name}: images must have shape (n, bands, ny, nx); got {tuple(x.shape)}"
        raise ValueError(msg)
    if len(bands) != x.shape[1]:
        looks = " (it looks channels-last: use np.moveaxis(images, -1, 1))" if (
            x.shape[-1] == len(bands)) else ""  # fmt: skip
        msg = (
            f"{name}: bands names {len(bands)} bands but images have {x.shape[1]} (axis 1){looks}"
        )
        raise ValueError(msg)
    if len(bands) < min_bands:
        msg = f"{name}: colour residuals need at least 2 bands; got {list(bands)}"
        raise ValueError(msg)
    return x


def _red_band(bands, red):
    """Index of the band whose light is subtracted: ``red``, or the longest wavelength."""
    bands = [str(b) for b in bands]
    if red is not None:
        if red not in bands:
            msg = f"red must be one of the bands {bands}; got {red!r}"
            raise ValueError(msg)
        return bands.index(red)
    try:
        return reddest_band(bands)
    except ValueError as err:
        msg = f"{err} with red"
        raise ValueError(msg) from None


def _gaussian_blur(x, sigma):
    """Blur each image of ``x`` (n, b, ny, nx) by a Gaussian of ``sigma`` px (n, b), in
    Fourier space on a zero-padded frame (the images are sky-subtracted)."""
    ny, nx = x.shape[-2:]
    pad = math.ceil(4.0 * float(sigma.max())) if sigma.numel() else 0
    if pad == 0:
        return x
    xp = functional.pad(x, (pad, pad, pad, pad))
    fy = torch.fft.fftfreq(ny + 2 * pad, dtype=torch.float64)
    fx = torch.fft.rfftfreq(nx + 2 * pad, dtype=torch.float64)
    k2 = (fy[:, None] ** 2 + fx[None, :] ** 2).to(torch.float32)
    gain = torch.exp(-2.0 * math.pi**2 * sigma[..., None, None] ** 2 * k2)
    out = torch.fft.irfft2(torch.fft.rfft2(xp) * gain, s=xp.shape[-2:])
    return out[..., pad : pad + ny, pad : pad + nx]


def _psf_sigma(psf_fwhm, n, nb, pixel_scale, name):
    """Per-(object, band) PSF sigma in px from ``psf_fwhm`` (arcsec; (n, b), (b,) or
    None -> NaN)."""
    if psf_fwhm is None:
        return torch.full((n, nb), float("nan"))
    f = np.asarray(getattr(psf_fwhm, "value", psf_fwhm), dtype=np.float64)
    if f.shape not in ((nb,), (n, nb)):
        msg = f"{name}: psf_fwhm must be (n, bands) = {(n, nb)} or (bands,) arcsec; got {f.shape}"
        raise ValueError(msg)
    f = np.broadcast_to(f, (n, nb))
    if (np.isfinite(f) & (f <= 0)).any():
        msg = f"{name}: psf_fwhm must be > 0 arcsec (NaN: unknown); got min {np.nanmin(f)}"
        raise ValueError(msg)
    return torch.as_tensor(f / GAUSSIAN_FWHM_PER_SIGMA / pixel_scale, dtype=torch.float32)


def _match_psf(x, sigma):
    """Blur each band to the broadest known PSF of its cutout; (blurred, target sigma px)."""
    known = torch.isfinite(sigma)
    target = torch.where(known, sigma, torch.zeros_like(sigma)).amax(1)  # (n,)
    extra = torch.sqrt((target[:, None] ** 2 - sigma**2).clamp_min(0.0))
    extra = torch.where(known, extra, torch.zeros_like(extra))
    return _gaussian_blur(x, extra), target


def _centres(red, radius_px, smooth_px):
    """Peak of the smoothed red band within ``radius_px`` of the cutout centre, (n, 2)
    as (y, x) px."""
    ny, nx = red.shape[-2:]
    s = _gaussian_blur(red[:, None], smooth_px[:, None])[:, 0]
    yy, xx = torch.meshgrid(torch.arange(ny), torch.arange(nx), indexing="ij")
    r = torch.hypot(yy - (ny - 1) / 2, xx - (nx - 1) / 2)
    s = torch.where(r <= radius_px, s, torch.full_like(s, -torch.inf))
    flat = s.flatten(1).argmax(1)
    return torch.stack([flat // nx, flat % nx], 1).to(torch.float32)


def _core_ratio(band, red, core):
    """Least-squares flux ratio ``band / red`` of each cutout's core (bool mask)."""
    c = core.to(red.dtype)
    return (c * band * red).sum((1, 2)) / (c * red**2).sum((1, 2)).clamp_min(1e-30)


def _prepare(images, bands, pixel_scale, psf_fwhm, red, core_radius, centre_radius, name):
    check_number(name, "pixel_scale", pixel_scale, 0.0)
    if not 0.01 <= pixel_scale <= 5.0:
        msg = f"{name}: pixel_scale must be in [0.01, 5] arcsec/px; got {pixel_scale}"
        raise ValueError(msg)
    check_number(name, "core_radius", core_radius, 0.0)
    check_number(name, "centre_radius", centre_radius, 0.0)
    x = _check_images(images, bands, name)
    n, nb = x.shape[:2]
    ir = _red_band(bands, red)
    finite = torch.isfinite(x)
    sky, _ = estimate_sky(torch.where(finite, x, torch.nan))
    x = torch.where(finite, x - torch.nan_to_num(sky)[..., None, None], torch.zeros_like(x))
    sigma = _psf_sigma(psf_fwhm, n, nb, pixel_scale, name)
    x, target = _match_psf(x, sigma)
    # Without PSF widths the smoothing is one pixel (the images are at least Nyquist).
    smooth = torch.where(target > 0, target, torch.ones_like(target))
    centres = _centres(x[:, ir], max(centre_radius / pixel_scale, 1.5), 2.0 * smooth)
    ny, nx = x.shape[-2:]
    yy, xx = torch.meshgrid(torch.arange(ny), torch.arange(nx), indexing="ij")
    r = torch.hypot(yy[None] - centres[:, 0, None, None], xx[None] - centres[:, 1, None, None])
    core_px = torch.maximum(torch.full_like(smooth, core_radius / pixel_scale),
                            smooth * GAUSSIAN_FWHM_PER_SIGMA)  # fmt: skip
    core = r <= core_px[:, None, None]
    redx = x[:, ir]
    blue = [j for j in range(nb) if j != ir]
    ratio = torch.stack([_core_ratio(x[:, j], redx, core) for j in blue], 1)
    residuals = torch.stack([x[:, j] - ratio[:, k, None, None] * redx
                             for k, j in enumerate(blue)], 1)  # fmt: skip
    return residuals, ratio, centres, smooth, [str(bands[j]) for j in blue], str(bands[ir])


def lens_light_residuals(images, *, bands, pixel_scale, psf_fwhm=None, red=None,
                         core_radius=0.8, centre_radius=1.2):  # fmt: skip
    """Colour residuals with the lens galaxy's light removed: ``b - a_b * red`` per band.

    Parameters
    ----------
    images : array_like of shape (n, bands, ny, nx)
        Calibrated cutouts (e.g. nmgy); NaN pixels count as sky.
    bands : sequence of str
        Band names of axis 1, at least two.
    pixel_scale : float
        Arcsec per pixel, in [0.01, 5].
    psf_fwhm : array_like of shape (n, bands) or (bands,), optional
        PSF FWHM of each band, arcsec (NaN: unknown). The bands of a cutout are blurred to
        its broadest known PSF first; without it they are used as they are.
    red : str, optional
        The band whose light is subtracted (default: the longest wavelength of ``bands``;
        then every band must be one of :data:`astrounsup.instrument.BANDS`).
    core_radius : float, optional
        Radius of the core the ratios ``a_b`` are fitted on, arcsec (at least the PSF
        FWHM).
    centre_radius : float, optional
        The centre is the red band's peak within this radius of the cutout centre, arcsec.

    Returns
    -------
    residuals : numpy.ndarray of shape (n, bands - 1, ny, nx), float32
        ``b - a_b * red`` for each band but ``red``, in the images' units, sky-subtracted
        and PSF-matched.
    ratios : numpy.ndarray of shape (n, bands - 1)
        ``a_b``: the core's flux ratio ``b / red`` (small for a red galaxy).
    centres : numpy.ndarray of shape (n, 2)
        The centre found, (y, x) px.
    residual_bands : list of str
        The names of the residuals' bands, e.g. ``["g", "r"]``.

    Raises
    ------
    ValueError
        Images not (n, bands, ny, nx) or with fewer than two bands, an unknown ``red``,
        or an option out of range (naming it).

    Examples
    --------
    >>> yy, xx = np.mgrid[:32, :32] - 15.5
    >>> red_galaxy = np.exp(-(yy**2 + xx**2) / 8.0)
    >>> images = np.stack([0.3 * red_galaxy, 0.6 * red_galaxy, red_galaxy])[None]
    >>> res, ratios, centres, names = lens_light_residuals(
    ...     images, bands=["g", "r", "i"], pixel_scale=0.2)
    >>> names, np.round(ratios, 2).tolist(), bool(np.abs(res).max() < 1e-6)
    (['g', 'r'], [[0.3, 0.6]], True)
    """
    residuals, ratio, centres, _, names, _ = _prepare(
        images, bands, pixel_scale, psf_fwhm, red, core_radius, centre_radius,
        "lens_light_residuals",
    )  # fmt: skip
    return residuals.numpy(), ratio.numpy().astype(np.float64), centres.numpy(), names


def _blue_snr(residuals, smooth):
    """One blue signal-to-noise map from the residuals: each over its border noise, summed
    in quadrature units, smoothed with the PSF and normalised by its own border noise."""
    _, noise = estimate_sky(residuals)
    noise = torch.where(torch.isfinite(noise) & (noise > 0), noise, torch.ones_like(noise))
    s = (residuals / noise[..., None, None]).sum(1, keepdim=True)
    s = _gaussian_blur(s, smooth[:, None])
    _, noise = estimate_sky(s)
    noise = torch.where(torch.isfinite(noise) & (noise > 0), noise, torch.ones_like(noise))
    return (s / noise[..., None, None])[:, 0]


def _polar(snr, centres, radii_px, n_angles):
    """``snr`` (n, ny, nx) sampled on circles of ``radii_px`` around ``centres``,
    bilinearly: (n, radii, angles)."""
    ny, nx = snr.shape[-2:]
    ang = torch.arange(n_angles, dtype=torch.float32) * (2 * math.pi / n_angles)
    r = torch.as_tensor(radii_px, dtype=torch.float32)
    y = centres[:, 0, None, None] + r[None, :, None] * torch.sin(ang)[None, None]
    x = centres[:, 1, None, None] + r[None, :, None] * torch.cos(ang)[None, None]
    grid = torch.stack([x / (nx - 1) * 2 - 1, y / (ny - 1) * 2 - 1], -1)
    return functional.grid_sample(snr[:, None], grid, mode="bilinear", padding_mode="zeros",
                         align_corners=True)[:, 0]  # fmt: skip


def _runs(above):
    """Longest circular run of True along the last axis and the number of runs, both
    (n, radii); a full circle is one run of its length."""
    a = above.to(torch.int8)
    m = a.shape[-1]
    starts = (a - torch.roll(a, 1, -1)) == 1
    count = starts.sum(-1)
    full = a.all(-1)
    twice = torch.cat([a, a], -1).to(torch.float32)
    # Longest run: cumulative count that resets at each False, over two turns.
    run = torch.zeros(a.shape[:-1])
    best = torch.zeros(a.shape[:-1])
    for k in range(2 * m):
        run = (run + 1) * twice[..., k]
        best = torch.maximum(best, run)
    best = torch.where(full, torch.full_like(best, m), best.clamp(max=m))
    return best, torch.where(full, torch.ones_like(count), count)


def _ring_features(polar, n_modes):
    m = polar.shape[-1]
    spectrum = torch.fft.rfft(polar, dim=-1).abs() / m
    top = polar.sort(-1).values[..., -max(m // 4, 1) :].mean(-1)
    longest, count = _runs(polar > _RUN_SIGMA)
    return [
        torch.asinh(polar.mean(-1)),
        *[torch.asinh(spectrum[..., k]) for k in range(1, n_modes + 1)],
        torch.asinh(top),
        (polar > _HIGH_SIGMA).to(torch.float32).mean(-1),
        longest / m,
        count.to(torch.float32),
    ]


def _extent(profile, start, circular):
    """Samples of ``profile`` (n, m) contiguous with ``start`` (n,) at or above half its
    value there, counted on both sides (circularly or up to the ends)."""
    n, m = profile.shape
    peak = profile.gather(1, start[:, None])[:, 0]
    above = profile >= 0.5 * peak[:, None]
    total = torch.ones(n)
    for step in (1, -1):
        alive = torch.ones(n, dtype=torch.bool)
        for k in range(1, m):
            j = start + step * k
            inside = (j >= 0) & (j < m)
            j = j % m if circular else j.clamp(0, m - 1)
            alive = alive & above.gather(1, j[:, None])[:, 0] & (inside | circular)
            total = total + alive.to(total.dtype)
        if circular:
            break  # one way round covers the whole circle
    return total.clamp(max=m)


def _peak_features(polar, radii):
    """The brightest sample of the polar map (n, radii, angles): its signal (asinh), radius
    (arcsec), tangential over radial extent at half maximum (log), and the brightest
    signal on the opposite half of its circle (asinh; a counter-image)."""
    n, _, m = polar.shape
    flat = polar.flatten(1).argmax(1)
    k, j = flat // m, flat % m
    rows = torch.arange(n)
    peak = polar[rows, k, j]
    ring = polar[rows, k]
    # One way round the circle from the peak, whose own side is counted twice: the
    # angular extent of a blob is its run forwards plus backwards.
    fwd = _extent(ring, j, True)
    back = _extent(ring.flip(1), (m - 1 - j), True)
    tangential = (fwd + back - 1).clamp(max=m) * (2 * math.pi / m) * torch.as_tensor(
        radii, dtype=torch.float32)[k]  # fmt: skip
    radial = _extent(polar[rows, :, j], k, False)
    step = float(radii[1] - radii[0]) if len(radii) > 1 else 1.0
    # The half circle facing the peak, symmetric about the opposite direction.
    opposite = (j[:, None] + torch.arange(m // 4, m - m // 4 + 1)[None]) % m
    counter = ring.gather(1, opposite).amax(1)
    return torch.stack([
        torch.asinh(peak),
        torch.as_tensor(radii, dtype=torch.float32)[k],
        torch.log(tangential / (radial * step)),
        torch.asinh(counter),
    ], 1)  # fmt: skip


_PEAK_NAMES = ("peak", "peak_radius", "peak_elongation", "counter_image")
_RING_NAMES = ("mean", "mode{}", "top_quarter", "share_2sigma", "longest_arc", "n_arcs")


class ArcFeatures(BaseEstimator):
    """Rotation-invariant features of blue light around a red centre, one row per cutout.

    No training: a scikit-learn transformer with nothing to fit (``fit`` checks the
    settings and names the features), usable
    beside the latents of any model (e.g. ``np.hstack([latents, features])`` into
    :class:`astrounsup.latent.LabelScorer`).

    Parameters
    ----------
    bands : sequence of str
        Band names of the images' axis 1.
    pixel_scale : float
        Arcsec per pixel.
    red : str, optional
        The band whose light is subtracted (default: the longest wavelength).
    radii : tuple of float, optional
        ``(inner, outer, step)`` of the circles sampled, arcsec.
    n_angles : int, optional
        Samples per circle, >= 16.
    n_modes : int, optional
        Angular Fourier modes kept per circle (1 to ``n_angles // 2``).
    core_radius, centre_radius : float, optional
        As in :func:`lens_light_residuals`, arcsec.
    batch_size : int, optional
        Cutouts computed at once.

    Attributes
    ----------
    feature_names_ : list of str
        The name of each column of :meth:`transform`'s result.
    radii_ : numpy.ndarray
        The circles' radii, arcsec.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> images = rng.normal(0, 0.01, (4, 3, 48, 48)).astype(np.float32)
    >>> est = ArcFeatures(bands=["g", "r", "i"], pixel_scale=0.263).fit(images)
    >>> X = est.transform(images)
    >>> X.shape == (4, len(est.feature_names_)), est.feature_names_[:2]
    (True, ['ring0.40_mean', 'ring0.40_mode1'])
    """

    def __init__(self, *, bands, pixel_scale, red=None, radii=(0.4, 3.0, 0.25), n_angles=64,
                 n_modes=4, core_radius=0.8, centre_radius=1.2, batch_size=512):  # fmt: skip
        self.bands = bands
        self.pixel_scale = pixel_scale
        self.red = red
        self.radii = radii
        self.n_angles = n_angles
        self.n_modes = n_modes
        self.core_radius = core_radius
        self.centre_radius = centre_radius
        self.batch_size = batch_size

    def fit(self, images=None, y=None):
        """Check the settings; ``images`` and ``y`` are ignored. Returns self."""
        name = type(self).__name__
        check_int(name, "n_angles", self.n_angles, 16)
        check_int(name, "n_modes", self.n_modes, 1)
        if self.n_modes > self.n_angles // 2:
            msg = (f"{name}: n_modes must be <= n_angles // 2 = {self.n_angles // 2}; got "
                   f"{self.n_modes}")  # fmt: skip
            raise ValueError(msg)
        check_int(name, "batch_size", self.batch_size, 1)
        try:
            inner, outer, step = (float(v) for v in self.radii)
        except (TypeError, ValueError):
            msg = f"{name}: radii must be (inner, outer, step) arcsec; got {self.radii!r}"
            raise ValueError(msg) from None
        if not 0 < inner <= outer or step <= 0:
            msg = f"{name}: radii must have 0 < inner <= outer and step > 0; got {self.radii!r}"
            raise ValueError(msg)
        _red_band(self.bands, self.red)
        self.radii_ = np.arange(inner, outer + step / 2, step)
        blue = [str(b) for b in self.bands if b != self.bands[_red_band(self.bands, self.red)]]
        names = []
        for r in self.radii_:
            for stem in _RING_NAMES:
                if stem == "mode{}":
                    names += [f"ring{r:.2f}_mode{k}" for k in range(1, self.n_modes + 1)]
                else:
                    names.append(f"ring{r:.2f}_{stem}")
        self.feature_names_ = [*names, *_PEAK_NAMES, *(f"core_ratio_{b}" for b in blue)]
        return self

    def transform(self, images, *, psf_fwhm=None):
        """Features of each cutout.

        Parameters
        ----------
        images : array_like of shape (n, bands, ny, nx)
        psf_fwhm : array_like of shape (n, bands) or (bands,), optional
            PSF FWHM per band, arcsec (see :func:`lens_light_residuals`).

        Returns
        -------
        numpy.ndarray of shape (n, f), float32
            One column per name of ``feature_names_``.
        """
        if not hasattr(self, "feature_names_"):
            msg = f"{type(self).__name__} is not fitted yet; call fit first"
            raise ValueError(msg)
        n = len(images)
        psf = None if psf_fwhm is None else np.asarray(
            getattr(psf_fwhm, "value", psf_fwhm), dtype=np.float64)  # fmt: skip
        if psf is not None and psf.ndim == 2 and len(psf) != n:
            msg = f"psf_fwhm has {len(psf)} rows for {n} images"
            raise ValueError(msg)
        out = []
        for lo in range(0, n, self.batch_size):
            part = None if psf is None else (psf[lo : lo + self.batch_size] if psf.ndim == 2
                                             else psf)  # fmt: skip
            out.append(self._batch(np.asarray(images[lo : lo + self.batch_size]), part))
        if not out:
            return np.zeros((0, len(self.feature_names_)), np.float32)
        return np.concatenate(out).astype(np.float32)

    def fit_transform(self, images, y=None, *, psf_fwhm=None):
        """``fit`` then ``transform``."""
        return self.fit(images, y).transform(images, psf_fwhm=psf_fwhm)

    def _batch(self, images, psf):
        residuals, ratio, centres, smooth, _, _ = _prepare(
            images, self.bands, float(self.pixel_scale), psf, self.red, self.core_radius,
            self.centre_radius, type(self).__name__,
        )  # fmt: skip
        snr = _blue_snr(residuals, smooth)
        polar = _polar(snr, centres, self.radii_ / float(self.pixel_scale), self.n_angles)
        feats = torch.stack(_ring_features(polar, self.n_modes), -1).flatten(1)
        return torch.cat([feats, _peak_features(polar, self.radii_), ratio], 1).numpy()


def arc_score(features, feature_names):
    """Lens-likeness without labels from :class:`ArcFeatures`: over the circles, the
    largest mean of the brightest quarter of the blue signal weighted by how far round the
    circle the longest arc reaches.

    Parameters
    ----------
    features : array_like of shape (n, f)
        :meth:`ArcFeatures.transform`'s result.
    feature_names : sequence of str
        Its ``feature_names_``.

    Returns
    -------
    numpy.ndarray of shape (n,)
        Higher is more lens-like; it ranks, it is not a probability.

    Examples
    --------
    >>> names = ["ring1.00_top_quarter", "ring1.00_longest_arc"]
    >>> arc_score([[2.0, 0.5], [2.0, 0.05]], names).round(2).tolist()
    [1.41, 0.45]
    """
    X = np.asarray(features, dtype=np.float64)
    names = list(feature_names)
    if X.ndim != 2 or X.shape[1] != len(names):
        msg = f"features must be (n, {len(names)}) for the names given; got {X.shape}"
        raise ValueError(msg)
    tops = [i for i, c in enumerate(names) if c.endswith("_top_quarter")]
    if not tops:
        msg = "feature_names hold no ring*_top_quarter: not ArcFeatures' names"
        raise ValueError(msg)
    arcs = [names.index(names[i].replace("_top_quarter", "_longest_arc")) for i in tops]
    return (X[:, tops] * np.sqrt(X[:, arcs])).max(1)
