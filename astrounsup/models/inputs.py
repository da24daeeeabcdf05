"""Input planes computed inside a model from its stretched cutouts: colour residuals with the
central object's light removed, beside the bands."""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 - the PyTorch convention
from torch import nn

__all__ = ["ColourResiduals"]


class ColourResiduals(nn.Module):
    """The bands, then ``b - a_b * red`` for every band but ``red``: colour residuals in
    which the light of the central object (a red lens galaxy) is removed and bluer light
    around it (an arc) is left.

    The input is asinh-stretched as by :class:`astrounsup.io.AsinhNormalizer` (``x =
    asinh(flux / (softening * noise)) / scale_b``, per cutout and band). The stretch is
    undone to fluxes in noise units, ``a_b`` is fitted per cutout by least squares on the
    core (a Gaussian weight of ``core_radius`` around the red band's brightest pixel within
    ``centre_radius`` of the centre, regularised towards 0 where the core is faint), and
    each residual is stretched as its band. What comes in has been through the views'
    augmentations (rotation, blur, noise), so the residuals are computed on what the model
    sees. The bands are not PSF-matched here (the cutouts' per-band PSF is not carried
    into training): a band's broader PSF leaves a ring of residual at the core.

    Parameters
    ----------
    bands : int
        Input bands, at least 2.
    red : int, optional
        Index of the band whose light is subtracted (default: the last).

    Notes
    -----
    The stretch (``scale``, ``softening``) and the radii in pixels are buffers set by
    :meth:`calibrate` and saved with the weights.

    Examples
    --------
    >>> m = ColourResiduals(3).calibrate(scale=[1.0, 1.0, 1.0], softening=2.0,
    ...                                  core_radius=3.0, centre_radius=4.0)
    >>> yy, xx = torch.meshgrid(torch.arange(32.0) - 16, torch.arange(32.0) - 16, indexing="ij")
    >>> red_galaxy = 50 * torch.exp(-(yy**2 + xx**2) / 8.0)
    >>> flux = torch.stack([0.3 * red_galaxy, 0.6 * red_galaxy, red_galaxy])[None]
    >>> out = m(torch.asinh(flux / 2.0))
    >>> tuple(out.shape), bool(out[:, 3:].abs().max() < 0.05)
    ((1, 5, 32, 32), True)
    """

    def __init__(self, bands, *, red=-1):
        super().__init__()
        if not (isinstance(bands, int) and not isinstance(bands, bool) and bands >= 2):
            msg = f"colour residuals need an integer number of bands >= 2; got {bands!r}"
            raise ValueError(msg)
        if not (isinstance(red, int) and -bands <= red < bands):
            msg = f"red must be a band index in [{-bands}, {bands - 1}]; got {red!r}"
            raise ValueError(msg)
        self.bands, self.red = bands, red % bands
        self.others = [b for b in range(bands) if b != self.red]
        self.register_buffer("scale", torch.ones(bands))
        self.register_buffer("softening", torch.tensor(1.0))
        self.register_buffer("core_radius", torch.tensor(3.0))
        self.register_buffer("centre_radius", torch.tensor(4.0))

    @property
    def out_bands(self):
        """Planes of the output: the bands and ``bands - 1`` residuals."""
        return 2 * self.bands - 1

    def calibrate(self, *, scale, softening, core_radius, centre_radius):
        """Set the stretch of the input (the normaliser's per-band ``scale_`` and its
        ``softening``) and the radii of the core fit and the centre search, px; returns
        ``self``."""
        scale = torch.as_tensor(scale, dtype=torch.float32).flatten()
        if scale.shape != (self.bands,) or not bool(torch.all(scale > 0)):
            msg = f"scale must be {self.bands} positive numbers; got {scale.tolist()}"
            raise ValueError(msg)
        for name, value in (("softening", softening), ("core_radius", core_radius),
                            ("centre_radius", centre_radius)):  # fmt: skip
            if not (isinstance(value, (int, float)) and value > 0):
                msg = f"{name} must be a number > 0; got {value!r}"
                raise ValueError(msg)
        with torch.no_grad():
            self.scale.copy_(scale)
            self.softening.fill_(float(softening))
            self.core_radius.fill_(float(core_radius))
            self.centre_radius.fill_(float(centre_radius))
        return self

    def forward(self, x):
        """``(B, bands, ny, nx)`` stretched cutouts to ``(B, 2 bands - 1, ny, nx)``."""
        if x.ndim != 4 or x.shape[1] != self.bands:
            msg = f"colour residuals expect (B, {self.bands}, ny, nx); got {tuple(x.shape)}"
            raise ValueError(msg)
        scale = self.scale.to(x.dtype)[None, :, None, None]
        soft = self.softening.to(x.dtype)
        # Fluxes in noise units; clipped so sinh stays finite in half precision too.
        flux = soft * torch.sinh(torch.clamp(x * scale, -30.0, 30.0))
        red = flux[:, self.red]
        weight = self._core_weight(red)
        num = (weight[:, None] * flux[:, self.others] * red[:, None]).sum(dim=(-2, -1))
        den = (weight * red**2).sum(dim=(-2, -1)) + weight.sum(dim=(-2, -1))
        ratio = num / den[:, None]  # (B, bands - 1)
        residual = flux[:, self.others] - ratio[..., None, None] * red[:, None]
        stretched = torch.asinh(residual / soft) / scale[:, self.others]
        return torch.cat([x, stretched], dim=1)

    def _core_weight(self, red):
        """A Gaussian of ``core_radius`` around the brightest pixel (3x3 mean) of the red
        band within ``centre_radius`` of the centre, (B, ny, nx)."""
        _b, ny, nx = red.shape
        yy = torch.arange(ny, device=red.device, dtype=red.dtype) - (ny - 1) / 2
        xx = torch.arange(nx, device=red.device, dtype=red.dtype) - (nx - 1) / 2
        r2 = yy[:, None] ** 2 + xx[None, :] ** 2
        smooth = F.avg_pool2d(red[:, None], 3, stride=1, padding=1, count_include_pad=False)[:, 0]
        smooth = smooth.masked_fill(r2 > self.centre_radius.to(red.dtype) ** 2, float("-inf"))
        peak = smooth.flatten(1).argmax(dim=1)
        cy, cx = yy[peak // nx], xx[peak % nx]
        d2 = (yy[None, :, None] - cy[:, None, None]) ** 2 + (
            xx[None, None, :] - cx[:, None, None]
        ) ** 2
        return torch.exp(-0.5 * d2 / self.core_radius.to(red.dtype) ** 2)
