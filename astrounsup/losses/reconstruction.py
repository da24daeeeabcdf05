"""Reconstruction losses that ignore masked (bad or hidden) pixels."""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["GaussianNLLLoss", "MaskedMSELoss", "masked_mean"]


def masked_mean(values, mask=None, *, dims=(1, 2, 3)):
    """Mean of ``values`` over ``dims`` counting only pixels where ``mask`` is False.

    Parameters
    ----------
    values : torch.Tensor of shape (B, C, H, W)
    mask : torch.Tensor of bool, same shape, optional
        True marks a pixel to ignore.
    dims : tuple of int, optional

    Returns
    -------
    torch.Tensor of shape (B,)
        Per-sample means (0 for a sample with every pixel masked).
    """
    if mask is None:
        return values.mean(dim=dims)
    if mask.shape != values.shape:
        msg = (
            f"mask must have the shape of the images {tuple(values.shape)}; "
            f"got {tuple(mask.shape)}"
        )
        raise ValueError(msg)
    keep = (~mask).to(values.dtype)
    return (values * keep).sum(dim=dims) / keep.sum(dim=dims).clamp_min(1.0)


def _reduce(per_sample, reduction):
    if reduction == "mean":
        return per_sample.mean()
    if reduction == "sum":
        return per_sample.sum()
    if reduction == "none":
        return per_sample
    msg = f"reduction must be 'mean', 'sum' or 'none'; got {reduction!r}"
    raise ValueError(msg)


class MaskedMSELoss(nn.Module):
    """Mean squared error over unmasked pixels.

    Parameters
    ----------
    reduction : {"mean", "sum", "none"}
        Over the batch; ``"none"`` gives one value per cutout, shape (B,).

    Examples
    --------
    >>> x = torch.zeros(1, 1, 2, 2)
    >>> y = torch.tensor([[[[1.0, 1.0], [1.0, 9.0]]]])
    >>> mask = torch.tensor([[[[False, False], [False, True]]]])
    >>> float(MaskedMSELoss()(y, x, mask))
    1.0
    """

    def __init__(self, *, reduction="mean"):
        super().__init__()
        _reduce(torch.zeros(1), reduction)
        self.reduction = reduction

    def forward(self, prediction, target, mask=None):
        """``prediction``, ``target``: (B, C, H, W); ``mask``: bool, True = ignore."""
        return _reduce(masked_mean((prediction - target) ** 2, mask), self.reduction)


class GaussianNLLLoss(nn.Module):
    """Gaussian negative log-likelihood per pixel, over unmasked pixels.

    ``0.5 * [log(2 pi var) + (target - mean)**2 / var]`` with ``var`` either predicted (a
    per-pixel variance, e.g. from a VAE decoder) or known (the survey's noise squared).

    Parameters
    ----------
    min_variance : float, optional
        Floor on the variance, for stability.
    reduction : {"mean", "sum", "none"}
    """

    def __init__(self, *, min_variance=1e-8, reduction="mean"):
        super().__init__()
        if not min_variance > 0:
            msg = f"min_variance must be > 0; got {min_variance!r}"
            raise ValueError(msg)
        _reduce(torch.zeros(1), reduction)
        self.min_variance = min_variance
        self.reduction = reduction

    def forward(self, mean, target, variance, mask=None):
        """``variance`` broadcasts against ``mean`` (e.g. (B, C, 1, 1) per band)."""
        var = torch.as_tensor(variance, dtype=mean.dtype, device=mean.device)
        var = var.expand_as(mean).clamp_min(self.min_variance)
        nll = 0.5 * (torch.log(2 * math.pi * var) + (target - mean) ** 2 / var)
        return _reduce(masked_mean(nll, mask), self.reduction)
