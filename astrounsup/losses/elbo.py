"""The Gaussian KL divergence of a VAE's posterior from its standard-normal prior."""

from __future__ import annotations

__all__ = ["gaussian_kl"]


def gaussian_kl(mu, log_var):
    """Closed-form ``KL(N(mu, exp(log_var)) || N(0, 1))``, summed over latent dimensions.

    Parameters
    ----------
    mu, log_var : torch.Tensor of shape (B, D)

    Returns
    -------
    torch.Tensor of shape (B,)
        ``0.5 * sum(mu**2 + exp(log_var) - 1 - log_var)``, in nats.

    Examples
    --------
    >>> import torch
    >>> float(gaussian_kl(torch.zeros(1, 4), torch.zeros(1, 4))[0])
    0.0
    """
    if mu.shape != log_var.shape:
        msg = (
            f"mu and log_var must have one shape; got {tuple(mu.shape)} and {tuple(log_var.shape)}"
        )
        raise ValueError(msg)
    return 0.5 * (mu**2 + log_var.exp() - 1.0 - log_var).sum(dim=-1)
