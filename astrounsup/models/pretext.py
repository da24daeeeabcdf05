"""Rotation prediction: a self-supervised pretext task (Gidaris et al. 2018)."""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 - the PyTorch convention
from torch import nn

from astrounsup.models._base import EncoderModel
from astrounsup.models.encoders import DEFAULT_WIDTHS, ConvEncoder

__all__ = ["RotationPretext"]


class RotationPretext(EncoderModel):
    """Predict which of 0/90/180/270 degrees a cutout was turned by.

    Galaxies have no preferred orientation on the sky, so the task is only solvable from
    structure a survey can show (a PSF or a detector axis would betray it): the encoder
    learns shapes. ``encode`` gives the representation.

    Parameters
    ----------
    bands : int
    size : int
        Cutout side, px.
    latent_dim, widths, kind
        As :class:`astrounsup.models.ConvAutoencoder`.

    Examples
    --------
    >>> model = RotationPretext(2, size=32, latent_dim=8, widths=(8, 16))
    >>> model(torch.randn(3, 2, 32, 32)).shape
    torch.Size([3, 4])
    """

    def __init__(self, bands, *, size, latent_dim=64, widths=DEFAULT_WIDTHS, kind="plain"):
        super().__init__()
        self._remember(locals())
        self.encoder = ConvEncoder(
            bands, size=size, latent_dim=latent_dim, widths=widths, kind=kind
        )
        self.classifier = nn.Sequential(nn.SiLU(), nn.Linear(latent_dim, 4))

    def forward(self, x):
        """Logits over the four rotations, ``(B, 4)``."""
        return self.classifier(self.encoder(x))

    def loss(self, x, *, generator=None):
        """Cross-entropy of the rotation of randomly turned copies of ``x``."""
        k = torch.randint(0, 4, (x.shape[0],), generator=generator).to(x.device)
        turned = torch.stack(
            [torch.rot90(img, int(t), dims=(-2, -1)) for img, t in zip(x, k, strict=True)]
        )
        logits = self(turned)
        return {
            "loss": F.cross_entropy(logits, k),
            "accuracy": (logits.argmax(dim=1) == k).float().mean(),
        }
