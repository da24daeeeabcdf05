"""What every model shares: an encoder, ``encode(x)``, and its recorded configuration."""

from __future__ import annotations

from torch import nn


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
