"""Models that turn cutouts into latent vectors: every one has ``encode(x)``."""

from astrounsup.models.autoencoder import ConvAutoencoder, jacobian_frobenius_sq
from astrounsup.models.contrastive import SimCLR
from astrounsup.models.encoders import ConvDecoder, ConvEncoder, check_architecture
from astrounsup.models.pretext import RotationPretext
from astrounsup.models.vae import VAE

__all__ = [
    "VAE",
    "ConvAutoencoder",
    "ConvDecoder",
    "ConvEncoder",
    "RotationPretext",
    "SimCLR",
    "check_architecture",
    "jacobian_frobenius_sq",
]
