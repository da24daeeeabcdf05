"""A redundancy penalty: how far the features of a batch are from being uncorrelated."""

from __future__ import annotations

import torch

__all__ = ["correlation_penalty"]


def correlation_penalty(z, *, eps=1e-4):
    """Mean squared off-diagonal Pearson correlation of the columns of ``z`` over its rows.

    Zero when the batch's features are uncorrelated, one when they are all perfectly
    (anti)correlated. Added to a contrastive loss it stops the representation collapsing
    onto a few directions (the redundancy-reduction idea of Barlow Twins, Zbontar et al.
    2021, applied to one view's batch): latents whose variance spreads over many
    directions suit k-means, which weighs every standardised feature alike.

    Parameters
    ----------
    z : torch.Tensor of shape (B, D)
        B >= 2 rows (objects), D >= 2 features. Computed in float32 whatever its dtype
        (under mixed precision too).
    eps : float, optional
        Added to each feature's variance, so a constant feature gives zero correlations
        rather than NaN.

    Returns
    -------
    torch.Tensor
        Scalar in [0, 1]: ``sum_{i != j} C_ij**2 / (D * (D - 1))``.

    Examples
    --------
    >>> z = torch.randn(256, 1)
    >>> float(correlation_penalty(torch.cat([z, 2 * z], dim=1))) > 0.99
    True
    """
    if z.ndim != 2 or z.shape[0] < 2 or z.shape[1] < 2:
        msg = f"z must be (B, D) with B >= 2 and D >= 2; got shape {tuple(z.shape)}"
        raise ValueError(msg)
    z = z.float()
    z = z - z.mean(dim=0, keepdim=True)
    z = z / torch.sqrt(z.pow(2).mean(dim=0, keepdim=True) + eps)
    c = (z.T @ z) / z.shape[0]
    d = c.shape[0]
    off = c.pow(2).sum() - torch.diagonal(c).pow(2).sum()
    return off / (d * (d - 1))
