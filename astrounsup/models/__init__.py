"""Models that turn cutouts into latent vectors: every one has ``encode(x)``."""

from astrounsup._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "_base": ["EncoderModel", "ReconstructionModel"],
        "autoencoder": ["ConvAutoencoder", "jacobian_frobenius_sq"],
        "contrastive": ["SimCLR"],
        "encoders": ["DEFAULT_WIDTHS", "ConvDecoder", "ConvEncoder", "check_architecture"],
        "inpaint": ["ContextEncoder", "draw_holes"],
        "inputs": ["ColourResiduals"],
        "pretext": ["RotationPretext"],
        "vae": ["VAE"],
    },
)
