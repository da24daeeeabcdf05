"""Elementwise maths that torch computes slowly on the CPU, and arrays as tensors."""

from __future__ import annotations

import math

import numpy as np
import torch

#: Above this |x|, x**2 overflows float32; asinh(x) = log(2 |x|) there to float precision.
_BIG = 1e18


def asinh(x):
    """``torch.asinh(x)`` through vectorised ``log1p`` and ``sqrt``: the same to within two
    float32 units in the last place, about twice as fast on the CPU (where torch's own
    ``asinh`` and NumPy's ``arcsinh`` are not vectorised). A tensor that requires a
    gradient goes through ``torch.asinh`` (``|x|`` has no useful gradient at 0).

    ``asinh(a) = log1p(a + a**2 / (1 + sqrt(1 + a**2)))`` for ``a = |x|`` is accurate for
    small ``a`` (no cancellation) and, for ``a`` above 1e18 where ``a**2`` would overflow,
    ``log(2 a)``; the sign is copied back. NaN stays NaN, infinities stay infinite.

    Parameters
    ----------
    x : torch.Tensor

    Returns
    -------
    torch.Tensor of the shape and dtype of ``x``

    Examples
    --------
    >>> x = torch.tensor([-3e38, -2.0, 0.0, 1e-8, 0.5, 1e6, float("inf")])
    >>> bool(torch.allclose(asinh(x), torch.asinh(x), rtol=2e-7, atol=0.0))
    True
    """
    if x.requires_grad:
        return torch.asinh(x)
    a = x.abs()
    clipped = a.clamp(max=_BIG)
    square = clipped * clipped
    y = torch.log1p(clipped + square / (1.0 + torch.sqrt(1.0 + square)))
    big = a > _BIG
    if bool(big.any()):
        y = torch.where(big, torch.log(a) + math.log(2.0), y)
    return torch.copysign(y, x)


def as_tensor(images):
    """``images`` as a float tensor (NumPy input as float32) and whether it was NumPy,
    so that a function can return the caller's type."""
    if isinstance(images, torch.Tensor):
        return images, False
    return torch.as_tensor(np.asarray(images, dtype=np.float32)), True
