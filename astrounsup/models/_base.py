"""What every model shares: an encoder, ``encode(x)``, and its recorded configuration;
what the models that rebuild their input share: ``reconstruct(x)``."""

from __future__ import annotations

from torch import nn

__all__ = ["EncoderModel", "ReconstructionModel"]


class EncoderModel(nn.Module):
    """Base of the models: ``self.encoder`` maps cutouts to latent vectors, and
    ``self.config`` holds the constructor's arguments (plain types, for checkpoints)."""

    def encode(self, x):
        """Latent vectors ``(B, latent_dim)`` of cutouts ``(B, bands, size, size)``."""
        return self.encoder(x)

    def _remember(self, arguments):
        """Record the constructor's ``locals()`` (its arguments) as ``self.config``."""
        self.config = {
            k: list(v) if isinstance(v, tuple) else v
            for k, v in arguments.items()
            if k not in ("self", "__class__")
        }


class ReconstructionModel(EncoderModel):
    """Base of the models with a decoder (autoencoders, VAEs): ``self.decoder`` maps latent
    vectors back to cutouts, and :meth:`reconstruct` is the deterministic reconstruction
    that reconstruction-error anomaly scores compare with the input."""

    def reconstruct(self, x):
        """The reconstruction ``(B, bands, size, size)`` of cutouts ``x`` of that shape."""
        raise NotImplementedError
