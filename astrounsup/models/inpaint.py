"""Context encoder: hide patches of a cutout and predict them from the rest (Pathak et al.
2016), an inpainting pretext whose residuals in the hidden patches flag artefacts."""

from __future__ import annotations

import torch

from astrounsup.losses import masked_mean
from astrounsup.models._base import ReconstructionModel
from astrounsup.models.encoders import DEFAULT_WIDTHS, ConvDecoder, ConvEncoder
from astrounsup.noise import FLUX_ERROR

__all__ = ["ContextEncoder", "draw_holes"]


def draw_holes(shape, *, count=(1, 3), size=(8, 16), generator=None, device=None):
    """Random rectangles to hide, one boolean map per cutout, ``(B, 1, H, W)``.

    Parameters
    ----------
    shape : tuple of int
        ``(B, C, H, W)`` of the batch.
    count : (int, int), optional
        Range of rectangles per cutout (inclusive).
    size : (int, int), optional
        Range of their sides, pixels (inclusive).
    generator : torch.Generator, optional
        Draws the rectangles (on the CPU).
    device : torch.device, optional

    Returns
    -------
    torch.Tensor of bool
    """
    b, _, h, w = shape
    lo, hi = count
    n = torch.randint(lo, hi + 1, (b,), generator=generator)
    k = int(hi)
    side_h = torch.randint(size[0], size[1] + 1, (b, k), generator=generator).clamp(max=h)
    side_w = torch.randint(size[0], size[1] + 1, (b, k), generator=generator).clamp(max=w)
    top = (torch.rand(b, k, generator=generator) * (h - side_h + 1)).long()
    left = (torch.rand(b, k, generator=generator) * (w - side_w + 1)).long()
    rows = torch.arange(h)[None, None, :, None]
    cols = torch.arange(w)[None, None, None, :]
    inside = (
        (rows >= top[..., None, None])
        & (rows < (top + side_h)[..., None, None])
        & (cols >= left[..., None, None])
        & (cols < (left + side_w)[..., None, None])
    )
    used = torch.arange(k)[None, :, None, None] < n[:, None, None, None]
    return (inside & used).any(dim=1, keepdim=True).to(device)


class ContextEncoder(ReconstructionModel):
    """Predict hidden patches of a cutout from the visible rest.

    The encoder sees the cutout with its hidden pixels set to 0 and, as an extra channel,
    where they are; the decoder predicts the whole cutout. The loss weights the hidden
    pixels (what must be inferred from context) and, by ``visible_weight``, the visible
    ones. With the normaliser's ``noise_softening`` and ``noise_scale`` the squared
    residuals are in units of each pixel's noise (:func:`astrounsup.noise.asinh_pixel_noise`).
    An artefact (a cosmic ray, a trail's segment, a ghost's rim) cannot be predicted from
    the pixels around it, so the residuals where it was hidden single it out
    (:func:`astrounsup.latent.inpainting_scores`).

    Parameters
    ----------
    bands, size, latent_dim, widths, kind
        As :class:`astrounsup.models.ConvAutoencoder`.
    visible_weight : float, optional
        Weight of the visible pixels in the loss, >= 0.
    holes : (int, int), optional
        Range of patches hidden per cutout in training.
    hole_size : (int, int), optional
        Range of their sides, pixels.
    noise_softening, noise_scale, noise_flux_error : optional
        As :class:`astrounsup.models.VAE`.

    Examples
    --------
    >>> model = ContextEncoder(2, size=32, latent_dim=4, widths=(8, 16))
    >>> x = torch.randn(3, 2, 32, 32)
    >>> holes = draw_holes(x.shape, generator=torch.Generator().manual_seed(0))
    >>> model.inpaint(x, holes).shape, model.encode(x).shape
    (torch.Size([3, 2, 32, 32]), torch.Size([3, 4]))
    """

    def __init__(
        self,
        bands,
        *,
        size,
        latent_dim=16,
        widths=DEFAULT_WIDTHS,
        kind="plain",
        visible_weight=0.1,
        holes=(1, 3),
        hole_size=(8, 16),
        noise_softening=None,
        noise_scale=None,
        noise_flux_error=FLUX_ERROR,
    ):
        super().__init__()
        self._remember(locals())
        if not (isinstance(visible_weight, (int, float)) and visible_weight >= 0):
            msg = f"visible_weight must be a number >= 0; got {visible_weight!r}"
            raise ValueError(msg)
        holes, hole_size = tuple(int(v) for v in holes), tuple(int(v) for v in hole_size)
        if len(holes) != 2 or not 1 <= holes[0] <= holes[1]:
            msg = f"holes must be a range (lo, hi) with 1 <= lo <= hi; got {holes!r}"
            raise ValueError(msg)
        if len(hole_size) != 2 or not 1 <= hole_size[0] <= hole_size[1] <= size:
            msg = f"hole_size must be a range (lo, hi) in [1, {size}] px; got {hole_size!r}"
            raise ValueError(msg)
        self._set_noise(bands, noise_softening, noise_scale, noise_flux_error)
        self.encoder = ConvEncoder(
            bands + 1, size=size, latent_dim=latent_dim, widths=widths, kind=kind
        )
        self.decoder = ConvDecoder(bands, size=size, latent_dim=latent_dim, widths=widths,
                                   kind=kind)  # fmt: skip
        self.bands, self.latent_dim = bands, latent_dim
        self.visible_weight = float(visible_weight)
        self.holes, self.hole_size = holes, hole_size

    def _code(self, x, holes):
        holes = holes.to(x.dtype)
        return self.encoder(torch.cat([x * (1 - holes), holes], dim=1))

    def encode(self, x):
        """The latent vectors of whole (nothing hidden) cutouts, ``(B, latent_dim)``."""
        return self._code(x, torch.zeros_like(x[:, :1]))

    def inpaint(self, x, holes):
        """The cutouts predicted with ``holes`` ``(B, 1, H, W)`` hidden, ``(B, bands, H, W)``."""
        return self.decoder(self._code(x, holes))

    def forward(self, x):
        """The whole cutouts rebuilt, nothing hidden."""
        return self.inpaint(x, torch.zeros_like(x[:, :1], dtype=torch.bool))

    def reconstruct(self, x):
        """As :meth:`forward`."""
        return self.forward(x)

    def loss(self, x, mask=None, *, holes):
        """Mean squared residual (in noise units with ``noise_scale``) of the hidden
        pixels, plus ``visible_weight`` times that of the visible ones; masked (bad)
        pixels count in neither."""
        pred = self.inpaint(x, holes)
        sigma = self.pixel_noise(x)
        sq = (pred - x) ** 2 if sigma is None else ((pred - x) / sigma) ** 2
        bad = torch.zeros_like(x, dtype=torch.bool) if mask is None else mask
        hidden = holes.expand_as(x)
        inner = masked_mean(sq, bad | ~hidden).mean()
        outer = masked_mean(sq, bad | hidden).mean()
        return {"loss": inner + self.visible_weight * outer, "hidden": inner, "visible": outer}
