"""Losses of the models: masked reconstruction, Gaussian KL, NT-Xent, a correlation penalty."""

from astrounsup.losses.decorrelation import correlation_penalty
from astrounsup.losses.elbo import gaussian_kl
from astrounsup.losses.ntxent import NTXentLoss
from astrounsup.losses.reconstruction import GaussianNLLLoss, MaskedMSELoss, masked_mean

__all__ = [
    "GaussianNLLLoss",
    "MaskedMSELoss",
    "NTXentLoss",
    "correlation_penalty",
    "gaussian_kl",
    "masked_mean",
]
