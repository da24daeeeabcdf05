"""Losses of the models: masked reconstruction, Gaussian KL, NT-Xent, a correlation penalty."""

from astrounsup._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "decorrelation": ["correlation_penalty"],
        "elbo": ["gaussian_kl"],
        "ntxent": ["NTXentLoss"],
        "reconstruction": ["GaussianNLLLoss", "MaskedMSELoss", "masked_mean"],
    },
)
