"""Photometric and instrumental augmentations: seeing, noise, dust, flux scale, brightness,
masks."""

from __future__ import annotations

import torch

from astrounsup.instrument import BANDS
from astrounsup.noise import estimate_sky
from astrounsup.transforms import functional as tf
from astrounsup.transforms.base import Transform, _check_range, _uniform

__all__ = [
    "Brightness",
    "FluxScale",
    "MaskPatches",
    "PSFDegrade",
    "PoissonNoise",
    "Redden",
    "SkyNoise",
    "SurveyDepth",
]


def _device_generator(seed, device):
    g = torch.Generator(device=device)
    g.manual_seed(int(seed))
    return g


def _draw_seed(generator):
    return int(torch.randint(0, 2**62, (1,), generator=generator))


def _column_or_constant(meta, column, constant, images, what):
    """Per-object values from ``meta[column]`` when present, else the constant."""
    if meta is not None and column is not None and column in meta:
        return meta[column].to(images.device, images.dtype)
    if constant is None:
        msg = (
            f"{what}: no '{column}' column in the batch metadata and no constant given; "
            f"pass meta={{'{column}': ...}} or set the constant"
        )
        raise ValueError(msg)
    return torch.as_tensor(constant, device=images.device, dtype=images.dtype)


class PSFDegrade(Transform):
    """Worse seeing: each sample's FWHM grows by a random ``factor`` in every band.

    The kernel of each band has FWHM ``sqrt(out**2 - in**2)`` with ``out = factor * in``;
    ``in`` comes from the batch metadata column ``fwhm_column`` (e.g. the ``psf_fwhm`` of
    the simulated survey, per object and band) or the constant ``fwhm_in``.

    Parameters
    ----------
    factor : (float, float)
        Range of ``FWHM_out / FWHM_in``, >= 1.
    pixel_scale : float
        Arcsec per pixel.
    fwhm_in : float or sequence of float, optional
        Seeing in arcsec (per band) when the metadata has none.
    fwhm_column : str, optional
    kernel : {"gaussian", "moffat"}
    p : float, optional
    """

    def __init__(
        self,
        factor=(1.0, 1.5),
        *,
        pixel_scale,
        fwhm_in=None,
        fwhm_column="psf_fwhm",
        kernel="gaussian",
        p=1.0,
    ):
        self.factor = _check_range("factor", factor, low=1.0)
        tf.check_psf_options(pixel_scale=pixel_scale, kernel=kernel)
        self.pixel_scale = float(pixel_scale)
        self.fwhm_in = fwhm_in
        self.fwhm_column = fwhm_column
        self.kernel = kernel
        super().__init__(p=p)

    def make_params(self, images, *, generator=None, meta=None):
        n = images.shape[0]
        apply = self._apply_mask(generator, n)
        factor = _uniform(generator, n, *self.factor)
        return {"factor": torch.where(apply, factor, torch.ones_like(factor))}

    def transform(self, images, masks, params, meta=None):
        b, c = images.shape[:2]
        f_in = _column_or_constant(meta, self.fwhm_column, self.fwhm_in, images, "PSFDegrade")
        f_in = tf._per_band(f_in, b, c, images.device, images.dtype)
        f_out = f_in * params["factor"].to(images.device, images.dtype)[:, None]
        out = tf.psf_degrade(images, f_in, f_out, pixel_scale=self.pixel_scale, kernel=self.kernel)
        # A bad pixel spreads over the kernel; the mask keeps only the pixels it marked.
        return out, masks


class SkyNoise(Transform):
    """Shallower data: Gaussian noise that takes each band's noise from ``sigma_in`` to
    ``depth * sigma_in`` (``depth`` drawn per sample, >= 1).

    ``sigma_in`` is the metadata column ``noise_column`` (the simulated survey's
    ``noise_sigma``), else the constant ``sigma_in``, else measured on each cutout's border
    (sigma-clipped MAD, :func:`astrounsup.noise.estimate_sky`).
    """

    def __init__(self, depth=(1.0, 2.0), *, sigma_in=None, noise_column="noise_sigma", p=1.0):
        self.depth = _check_range("depth", depth, low=1.0)
        if sigma_in is not None and torch.any(torch.as_tensor(sigma_in) < 0):
            msg = f"sigma_in must be >= 0; got {sigma_in!r}"
            raise ValueError(msg)
        self.sigma_in = sigma_in
        self.noise_column = noise_column
        super().__init__(p=p)

    def make_params(self, images, *, generator=None, meta=None):
        n = images.shape[0]
        apply = self._apply_mask(generator, n)
        depth = _uniform(generator, n, *self.depth)
        return {
            "depth": torch.where(apply, depth, torch.ones_like(depth)),
            "seed": _draw_seed(generator),
        }

    def _sigma_in(self, images, meta):
        if (meta is not None and self.noise_column in meta) or self.sigma_in is not None:
            return _column_or_constant(meta, self.noise_column, self.sigma_in, images, "SkyNoise")

        x = images.detach().float()
        # Medians run where the images are (CUDA has them); MPS lacks nanmedian.
        _, noise = estimate_sky(x.cpu() if x.device.type == "mps" else x)
        return noise.to(images.device, images.dtype)

    def transform(self, images, masks, params, meta=None):
        b, c = images.shape[:2]
        sigma_in = tf._per_band(self._sigma_in(images, meta), b, c, images.device, images.dtype)
        depth = params["depth"].to(images.device, images.dtype)[:, None]
        sigma = sigma_in * torch.sqrt(depth**2 - 1.0)
        g = _device_generator(params["seed"], images.device)
        return tf.add_sky_noise(images, sigma, generator=g), masks


class SurveyDepth(SkyNoise):
    """The depth of another cutout of the same batch: each cutout's noise is raised, in
    every band, to that of a cutout drawn at random from the batch (left as it is where
    the other is deeper), so the views span the survey's own range of depths and no more.

    Each cutout's noise is measured as :class:`SkyNoise` measures it (the metadata column
    ``noise_column``, the constant ``sigma_in``, else the cutout's border).

    Parameters
    ----------
    sigma_in : float or sequence of float, optional
    noise_column : str, optional
    p : float, optional
        Probability of changing each cutout.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.randn(64, 2, 24, 24, generator=g) * torch.linspace(1, 3, 64)[:, None, None, None]
    >>> y, _ = SurveyDepth()(x, generator=g)
    >>> bool(y[:32].std() > x[:32].std())  # the deeper half gets noisier
    True
    >>> bool(torch.equal(y[-1], x[-1]))  # the noisiest cutout keeps its noise
    True
    """

    def __init__(self, *, sigma_in=None, noise_column="noise_sigma", p=1.0):
        super().__init__((1.0, 1.0), sigma_in=sigma_in, noise_column=noise_column, p=p)

    def make_params(self, images, *, generator=None, meta=None):
        n = images.shape[0]
        return {
            "other": torch.randperm(n, generator=generator),
            "apply": self._apply_mask(generator, n),
            "seed": _draw_seed(generator),
        }

    def transform(self, images, masks, params, meta=None):
        b, c = images.shape[:2]
        sigma_in = tf._per_band(self._sigma_in(images, meta), b, c, images.device, images.dtype)
        target = sigma_in[params["other"].to(images.device)]
        added = torch.sqrt(torch.clamp(target**2 - sigma_in**2, min=0.0))
        added = added * params["apply"].to(images.device, images.dtype)[:, None]
        g = _device_generator(params["seed"], images.device)
        return tf.add_sky_noise(images, added, generator=g), masks


class PoissonNoise(Transform):
    """Shot noise of the sources' own flux through ``gain`` electrons per flux unit."""

    def __init__(self, gain, *, p=1.0):
        if torch.any(torch.as_tensor(gain) <= 0):
            msg = f"gain must be > 0 electrons per flux unit; got {gain!r}"
            raise ValueError(msg)
        self.gain = gain
        super().__init__(p=p)

    def make_params(self, images, *, generator=None, meta=None):
        return {
            "apply": self._apply_mask(generator, images.shape[0]),
            "seed": _draw_seed(generator),
        }

    def transform(self, images, masks, params, meta=None):
        g = _device_generator(params["seed"], images.device)
        out = tf.add_poisson_noise(images, self.gain, generator=g)
        return self._select(params["apply"], out, images), masks


class Redden(Transform):
    """Dust: scale band ``j`` by ``10**(-0.4 R_j E(B-V))``, E(B-V) drawn in ``ebv`` or taken
    from the metadata column ``ebv_column``.

    Parameters
    ----------
    ebv : (float, float), optional
        Range of E(B-V), mag, >= 0.
    bands : sequence of str, optional
        Band names, for the DECam-like coefficients of :data:`astrounsup.instrument.BANDS`.
    coefficients : sequence of float, optional
        ``R_j = A_j / E(B-V)`` per band (instead of ``bands``).
    ebv_column : str, optional
    p : float, optional
    """

    def __init__(self, ebv=(0.0, 0.1), *, bands=None, coefficients=None, ebv_column="ebv", p=1.0):
        self.ebv = _check_range("ebv", ebv, low=0.0)
        if coefficients is None:
            if bands is None:
                msg = "Redden needs bands (names) or coefficients (A_band / E(B-V) per band)"
                raise ValueError(msg)

            unknown = [b for b in bands if b not in BANDS]
            if unknown:
                msg = (
                    f"no extinction coefficient for bands {unknown}; known: {sorted(BANDS)}; "
                    "pass coefficients="
                )
                raise ValueError(msg)
            coefficients = [BANDS[b].extinction for b in bands]
        self.coefficients = [float(c) for c in coefficients]
        self.ebv_column = ebv_column
        super().__init__(p=p)

    def make_params(self, images, *, generator=None, meta=None):
        n = images.shape[0]
        apply = self._apply_mask(generator, n)
        ebv = _uniform(generator, n, *self.ebv)
        return {"ebv": torch.where(apply, ebv, torch.zeros_like(ebv)), "apply": apply}

    def transform(self, images, masks, params, meta=None):
        ebv = params["ebv"].to(images.device, images.dtype)
        if meta is not None and self.ebv_column in meta:
            ebv = torch.where(
                params["apply"].to(images.device),
                meta[self.ebv_column].to(images.device, images.dtype),
                0.0,
            )
        return tf.redden(images, ebv, self.coefficients), masks


class FluxScale(Transform):
    """Multiply by a random factor in ``factor``: per band (calibration errors) or one per
    sample (distance)."""

    def __init__(self, factor=(0.9, 1.1), *, per_band=True, p=1.0):
        self.factor = _check_range("factor", factor, low=0.0, strictly=True)
        self.per_band = per_band
        super().__init__(p=p)

    def make_params(self, images, *, generator=None, meta=None):
        n, c = images.shape[:2]
        apply = self._apply_mask(generator, n)
        shape = (n, c) if self.per_band else (n, 1)
        f = self.factor[0] + (self.factor[1] - self.factor[0]) * torch.rand(
            shape, generator=generator
        )
        return {"factor": torch.where(apply[:, None], f, torch.ones_like(f)).expand(n, c)}

    def transform(self, images, masks, params, meta=None):
        return tf.scale_flux(images, params["factor"].to(images.device)), masks


class Brightness(Transform):
    """The same object brighter or fainter: every band's flux (noise included) times
    ``10**(-0.4 * dmag)``, ``dmag`` drawn per sample in ``dmag``.

    Parameters
    ----------
    dmag : (float, float), optional
        Range of the magnitude change (positive: fainter), mag; drawn uniformly, so the
        flux factor is log-uniform.
    asinh_scale : sequence of float, optional
        For cutouts stretched by :class:`astrounsup.io.AsinhNormalizer`: its per-band
        ``scale_``. The stretch is undone, the flux scaled and the stretch applied again
        (:func:`astrounsup.transforms.functional.scale_stretched_flux`). ``None``: the
        cutouts are linear fluxes and are multiplied.
    p : float, optional

    Examples
    --------
    >>> import torch
    >>> x = torch.ones(2, 3, 8, 8)
    >>> out, _ = Brightness((-1.0, -1.0))(x, generator=torch.Generator().manual_seed(0))
    >>> round(float(out[0, 0, 0, 0]), 3)
    2.512
    """

    def __init__(self, dmag=(-1.0, 1.0), *, asinh_scale=None, p=1.0):
        self.dmag = _check_range("dmag", dmag)
        if asinh_scale is not None:
            k = torch.as_tensor(asinh_scale, dtype=torch.float32)
            if k.ndim != 1 or not bool(torch.all(k > 0)):
                msg = f"asinh_scale must be positive values, one per band; got {asinh_scale!r}"
                raise ValueError(msg)
            asinh_scale = [float(v) for v in k]
        self.asinh_scale = asinh_scale
        super().__init__(p=p)

    def make_params(self, images, *, generator=None, meta=None):
        n = images.shape[0]
        apply = self._apply_mask(generator, n)
        dmag = _uniform(generator, n, *self.dmag)
        return {"factor": torch.where(apply, 10.0 ** (-0.4 * dmag), torch.ones_like(dmag))}

    def transform(self, images, masks, params, meta=None):
        factor = params["factor"].to(images.device)
        if self.asinh_scale is None:
            return tf.scale_flux(images, factor), masks
        return tf.scale_stretched_flux(images, factor, self.asinh_scale), masks


class MaskPatches(Transform):
    """Hide random rectangles in every band (for inpainting and denoising pretexts):
    their pixels become ``fill`` and are marked in the mask, which the losses respect.

    Parameters
    ----------
    count : (int, int)
        Range of rectangles per cutout.
    size : (int, int)
        Range of rectangle sides, pixels.
    fill : float, optional
        Value of hidden pixels (0: the sky of sky-subtracted data).
    """

    def __init__(self, count=(1, 3), size=(4, 12), *, fill=0.0, p=1.0):
        lo, hi = _check_range("count", count, low=0.0)
        self.count = (int(lo), int(hi))
        lo, hi = _check_range("size", size, low=1.0)
        self.size = (int(lo), int(hi))
        self.fill = float(fill)
        super().__init__(p=p)

    def make_params(self, images, *, generator=None, meta=None):
        n, _, ny, nx = images.shape
        p_max = self.count[1]
        apply = self._apply_mask(generator, n)
        count = torch.randint(self.count[0], p_max + 1, (n,), generator=generator) * apply
        h = torch.randint(self.size[0], self.size[1] + 1, (n, p_max), generator=generator)
        w = torch.randint(self.size[0], self.size[1] + 1, (n, p_max), generator=generator)
        top = (torch.rand(n, p_max, generator=generator) * (ny - h + 1).clamp_min(1)).long()
        left = (torch.rand(n, p_max, generator=generator) * (nx - w + 1).clamp_min(1)).long()
        used = torch.arange(p_max)[None, :] < count[:, None]
        return {"top": top, "left": left, "height": h * used, "width": w * used}

    def transform(self, images, masks, params, meta=None):
        dev = images.device
        hidden = tf.mask_rectangles(
            images.shape,
            params["top"].to(dev),
            params["left"].to(dev),
            params["height"].to(dev),
            params["width"].to(dev),
            device=dev,
        )
        out = torch.where(
            hidden, torch.as_tensor(self.fill, dtype=images.dtype, device=dev), images
        )
        hidden = hidden.expand(images.shape)
        return out, hidden.clone() if masks is None else masks | hidden
