"""Variational autoencoder with a beta-weighted KL and a Gaussian likelihood."""

from __future__ import annotations

import math

import torch

from astrounsup.losses import GaussianNLLLoss, gaussian_kl
from astrounsup.models._base import ReconstructionModel
from astrounsup.models.encoders import DEFAULT_WIDTHS, ConvDecoder, ConvEncoder
from astrounsup.noise import FLUX_ERROR

__all__ = ["VAE"]


class VAE(ReconstructionModel):
    """Gaussian-posterior VAE (reparameterisation trick) with a beta-weighted KL.

    The likelihood is Gaussian per pixel, with a variance that is either given (e.g. the
    survey's ``noise_sigma**2`` per band: the physically right choice for calibrated
    fluxes), the noise of each pixel of asinh-normalised cutouts (``noise_softening``
    and ``noise_scale``, the normaliser's, and ``noise_flux_error``:
    :func:`astrounsup.noise.asinh_pixel_noise`, the sky noise measured on each cutout and a
    relative error on bright light, so the reconstruction term is a chi-square that means
    the same for a deep and a shallow cutout), learned per pixel by the decoder
    (``learn_variance=True``), or 1.

    Parameters
    ----------
    bands, size, latent_dim, widths, kind
        As :class:`astrounsup.models.ConvAutoencoder`.
    beta : float, optional
        KL weight (1: the ELBO; > 1: beta-VAE), >= 0.
    learn_variance : bool, optional
        The decoder also predicts each pixel's log-variance, and the likelihood uses it
        instead of a given noise.
    noise_softening : float, optional
        The ``softening`` of the :class:`astrounsup.io.AsinhNormalizer` of the inputs.
    noise_scale : sequence of float of shape (bands,), optional
        Its ``scale_``; with ``noise_softening``, the likelihood's variance is each pixel's
        noise squared (:func:`astrounsup.noise.asinh_pixel_noise`).
    noise_flux_error : float, optional
        The relative flux error that noise adds to the sky noise, >= 0 (default
        :data:`astrounsup.noise.FLUX_ERROR`): without it the likelihood weighs a bright core's
        pixels 1e5 times a sky pixel and more, fits the cores and gives up the sky.

    Examples
    --------
    >>> vae = VAE(2, size=32, latent_dim=4, widths=(8, 16))
    >>> vae.sample(3, generator=torch.Generator().manual_seed(0)).shape
    torch.Size([3, 2, 32, 32])
    """

    def __init__(
        self,
        bands,
        *,
        size,
        latent_dim=16,
        widths=DEFAULT_WIDTHS,
        kind="plain",
        beta=1.0,
        learn_variance=False,
        noise_softening=None,
        noise_scale=None,
        noise_flux_error=FLUX_ERROR,
    ):
        super().__init__()
        self._remember(locals())
        if not (isinstance(beta, (int, float)) and beta >= 0):
            msg = f"beta must be a number >= 0; got {beta!r}"
            raise ValueError(msg)
        self._set_noise(bands, noise_softening, noise_scale, noise_flux_error)
        self.encoder = ConvEncoder(
            bands,
            size=size,
            latent_dim=latent_dim,
            widths=widths,
            kind=kind,
            out_features=2 * latent_dim,
        )
        self.decoder = ConvDecoder(
            bands * (2 if learn_variance else 1),
            size=size,
            latent_dim=latent_dim,
            widths=widths,
            kind=kind,
        )
        self.bands, self.latent_dim = bands, latent_dim
        self.beta, self.learn_variance = float(beta), learn_variance
        self.nll = GaussianNLLLoss(reduction="none")

    def posterior(self, x):
        """``(mu, log_var)``, each ``(B, latent_dim)``."""
        h = self.encoder(x)
        mu, log_var = h.chunk(2, dim=1)
        return mu, log_var.clamp(-20.0, 10.0)

    def encode(self, x):
        """The posterior means ``(B, latent_dim)``: the latent vectors of the analysis."""
        return self.posterior(x)[0]

    def decode(self, z):
        """``(mean, variance or None)`` of the likelihood."""
        out = self.decoder(z)
        if not self.learn_variance:
            return out, None
        mean, log_var = out.split(self.bands, dim=1)
        return mean, log_var.clamp(-20.0, 10.0).exp()

    def reconstruct(self, x):
        """The likelihood mean decoded from the posterior mean, ``(B, bands, size, size)``:
        deterministic, unlike :meth:`forward`'s single posterior draw."""
        return self.decode(self.posterior(x)[0])[0]

    def forward(self, x, *, generator=None):
        """Reconstruction mean from one posterior draw."""
        mu, log_var = self.posterior(x)
        eps = _normal_like(mu, generator)
        return self.decode(mu + eps * (0.5 * log_var).exp())[0]

    def elbo(self, x, mask=None, *, variance=None, generator=None):
        """Per-object ELBO terms (nats, per pixel for the likelihood).

        Returns
        -------
        dict of str to torch.Tensor of shape (B,)
            ``"nll"`` (mean over unmasked pixels), ``"kl"`` (per pixel, so the two are on one
            scale) and ``"elbo" = -(nll + kl)``; a low ELBO is an anomaly score.
        """
        mu, log_var = self.posterior(x)
        eps = _normal_like(mu, generator)
        mean, learned = self.decode(mu + eps * (0.5 * log_var).exp())
        var = learned if learned is not None else variance
        if var is None:
            var = self.pixel_variance(x)
        nll = self.nll(mean, x, var, mask)
        kl = gaussian_kl(mu, log_var) / math.prod(x.shape[1:])
        return {"nll": nll, "kl": kl, "elbo": -(nll + kl)}

    def pixel_variance(self, x):
        """The likelihood's variance for inputs ``x`` when none is given or learned: the
        pixels' noise squared (with ``noise_scale``), else 1."""
        sigma = self.pixel_noise(x)
        return 1.0 if sigma is None else sigma**2

    def loss(self, x, mask=None, *, variance=None, generator=None):
        """``mean(nll + beta * kl)`` and its terms, as scalars."""
        terms = self.elbo(x, mask, variance=variance, generator=generator)
        nll, kl = terms["nll"].mean(), terms["kl"].mean()
        return {"loss": nll + self.beta * kl, "reconstruction": nll, "kl": kl}

    @torch.no_grad()
    def sample(self, n, *, generator=None, device=None):
        """``n`` new cutouts decoded from the prior, ``(n, bands, size, size)``."""
        device = device or next(self.parameters()).device
        z = torch.randn(n, self.latent_dim, generator=generator).to(device)
        return self.decode(z)[0]


def _normal_like(t, generator):
    """Standard normal draws shaped like ``t`` from ``generator`` on its own device (a CPU
    generator, as the trainer passes, gives the same draws whichever device ``t`` is on)."""
    device = t.device if generator is None else generator.device
    return torch.randn(t.shape, generator=generator, device=device).to(t.device, t.dtype)
