"""Convolutional autoencoders: plain, denoising, sparse and contractive in one class."""

from __future__ import annotations

import torch

from astrounsup.losses import MaskedMSELoss
from astrounsup.models._base import ReconstructionModel
from astrounsup.models.encoders import DEFAULT_WIDTHS, ConvDecoder, ConvEncoder

__all__ = ["ConvAutoencoder", "jacobian_frobenius_sq"]


def jacobian_frobenius_sq(encoder, x):
    """Exact squared Frobenius norm of the encoder Jacobian, per sample.

    ``||d encoder(x) / dx||_F**2`` for each cutout, from all ``latent_dim`` rows of the
    Jacobian computed at once (``torch.func.jacrev`` vectorised over the batch with
    ``vmap``): exact, and one batched backward pass per latent dimension.

    Parameters
    ----------
    encoder : torch.nn.Module
        Maps ``(B, C, H, W)`` to ``(B, D)`` with per-sample operations only.
    x : torch.Tensor of shape (B, C, H, W)

    Returns
    -------
    torch.Tensor of shape (B,)
    """
    from torch.func import functional_call, jacrev, vmap

    params = dict(encoder.named_parameters())
    buffers = dict(encoder.named_buffers())

    def one(xi):
        return functional_call(encoder, (params, buffers), (xi[None],))[0]

    jac = vmap(jacrev(one))(x)  # (B, D, C, H, W)
    return jac.pow(2).flatten(1).sum(dim=1)


class ConvAutoencoder(ReconstructionModel):
    """Convolutional autoencoder with a linear output layer.

    The variants are options: a *denoising* autoencoder is this model trained with
    corrupted inputs and clean targets (``loss(noisy, target=clean)``, see
    :func:`astrounsup.transforms.denoising_pipeline`); ``sparsity`` adds an L1 penalty on
    the code or a KL sparsity penalty on its sigmoid activations; ``contractive`` adds the
    exact squared Frobenius norm of the encoder Jacobian.

    Parameters
    ----------
    bands : int
    size : int
        Cutout side, px.
    latent_dim : int, optional
        Length of the latent vector (the code) each cutout is encoded to.
    widths : sequence of int, optional
        Channels of each stride-2 convolution stage of the encoder (a decoder mirrors
        them); their number sets how often the cutout is halved.
    kind : {"plain", "resnet"}, optional
        ``"resnet"`` adds a residual block after each stage.
    sparsity : {None, "l1", "kl"}, optional
        Sparsity penalty on the code: none, L1 on the code, or the KL divergence of the
        mean sigmoid activation from ``sparsity_target``.
    sparsity_weight : float, optional
        Weight of the sparsity penalty in the loss, >= 0.
    sparsity_target : float, optional
        Mean activation aimed at by the KL penalty, in (0, 1).
    contractive_weight : float, optional
        Weight of the Jacobian penalty (0: off).

    Examples
    --------
    >>> model = ConvAutoencoder(3, size=32, latent_dim=8, widths=(8, 16))
    >>> x = torch.randn(4, 3, 32, 32)
    >>> model.encode(x).shape, model(x).shape
    (torch.Size([4, 8]), torch.Size([4, 3, 32, 32]))
    """

    def __init__(
        self,
        bands,
        *,
        size,
        latent_dim=16,
        widths=DEFAULT_WIDTHS,
        kind="plain",
        sparsity=None,
        sparsity_weight=1e-3,
        sparsity_target=0.05,
        contractive_weight=0.0,
    ):
        super().__init__()
        self._remember(locals())
        if sparsity not in (None, "l1", "kl"):
            msg = f"sparsity must be None, 'l1' or 'kl'; got {sparsity!r}"
            raise ValueError(msg)
        if not sparsity_weight >= 0 or not contractive_weight >= 0:
            msg = (
                f"penalty weights must be >= 0; got sparsity_weight={sparsity_weight!r}, "
                f"contractive_weight={contractive_weight!r}"
            )
            raise ValueError(msg)
        if not 0 < sparsity_target < 1:
            msg = f"sparsity_target must be in (0, 1); got {sparsity_target!r}"
            raise ValueError(msg)
        self.encoder = ConvEncoder(
            bands, size=size, latent_dim=latent_dim, widths=widths, kind=kind
        )
        self.decoder = ConvDecoder(
            bands, size=size, latent_dim=latent_dim, widths=widths, kind=kind
        )
        self.sparsity, self.sparsity_weight = sparsity, float(sparsity_weight)
        self.sparsity_target = float(sparsity_target)
        self.contractive_weight = float(contractive_weight)
        self.reconstruction = MaskedMSELoss(reduction="none")

    def forward(self, x):
        """Reconstructions ``(B, bands, size, size)``."""
        return self.decoder(self.encoder(x))

    def reconstruct(self, x):
        """Reconstructions ``(B, bands, size, size)``: the decoded code of ``x``."""
        return self(x)

    def loss(self, x, mask=None, *, target=None):
        """Training loss and its terms.

        Parameters
        ----------
        x : torch.Tensor of shape (B, bands, size, size)
            Input (corrupted, for a denoising autoencoder).
        mask : torch.Tensor of bool, optional
            Pixels the reconstruction term ignores.
        target : torch.Tensor, optional
            What to reconstruct (default ``x``).

        Returns
        -------
        dict of str to torch.Tensor
            ``"loss"`` (scalar) and each term (``"reconstruction"``, ``"sparsity"``,
            ``"contractive"``) as scalars.
        """
        z = self.encoder(x)
        recon = self.decoder(z)
        terms = {
            "reconstruction": self.reconstruction(
                recon, x if target is None else target, mask
            ).mean()
        }
        if self.sparsity == "l1":
            terms["sparsity"] = self.sparsity_weight * z.abs().mean()
        elif self.sparsity == "kl":
            rho_hat = torch.sigmoid(z).mean(dim=0).clamp(1e-6, 1 - 1e-6)
            rho = self.sparsity_target
            kl = rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))
            terms["sparsity"] = self.sparsity_weight * kl.sum()
        if self.contractive_weight > 0:
            terms["contractive"] = (
                self.contractive_weight * jacobian_frobenius_sq(self.encoder, x).mean()
            )
        terms["loss"] = sum(terms.values())
        return terms
