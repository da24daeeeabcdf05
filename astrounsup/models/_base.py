"""What every model shares: an encoder, ``encode(x)``, and its recorded configuration;
what the models that rebuild their input share: ``reconstruct(x)``."""

from __future__ import annotations

from torch import nn

from astrounsup._estimators import check_number
from astrounsup.noise import asinh_pixel_noise

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

    def _set_noise(self, bands, noise_softening, noise_scale, noise_flux_error):
        """Keep the normaliser's ``softening`` and per-band ``scale_``, which give each
        pixel's sky noise (:meth:`pixel_noise`), both or neither, and the relative flux
        error added to it."""
        if (noise_softening is None) != (noise_scale is None):
            msg = "noise_softening and noise_scale go together (the normaliser's); got one"
            raise ValueError(msg)
        if noise_scale is not None and len(noise_scale) != bands:
            msg = f"noise_scale must have one value per band ({bands}); got {len(noise_scale)}"
            raise ValueError(msg)
        self.noise_softening = None if noise_softening is None else float(noise_softening)
        self.noise_scale = None if noise_scale is None else [float(v) for v in noise_scale]
        check_number(type(self).__name__, "noise_flux_error", noise_flux_error, 0.0)
        self.noise_flux_error = float(noise_flux_error)

    def pixel_noise(self, x):
        """Each pixel's noise in the units of ``x`` (asinh-normalised cutouts: the sky
        noise and ``noise_flux_error`` of the flux, :func:`astrounsup.noise.asinh_pixel_noise`),
        or None without the noise settings."""
        if getattr(self, "noise_scale", None) is None:
            return None

        sigma = asinh_pixel_noise(
            x.detach().float(),
            softening=self.noise_softening,
            scale=self.noise_scale,
            flux_error=self.noise_flux_error,
        )
        return sigma.to(x.dtype)
