"""The vectorised asinh against torch's, in float64, over every range of values."""

import numpy as np
import pytest
import torch

from astrounsup._numeric import asinh


@pytest.mark.parametrize("scale", [1e-30, 1e-6, 1.0, 30.0, 1e5, 1e17, 1e30, 3e38])
def test_matches_float64_asinh(scale):
    x = torch.from_numpy(np.random.default_rng(0).normal(size=4000).astype("f4")) * scale
    x = x.clamp(-3.4e38, 3.4e38)
    ref = torch.asinh(x.double())
    got = asinh(x)
    assert got.dtype == torch.float32
    rel = ((got.double() - ref).abs() / ref.abs().clamp_min(1e-300)).max().item()
    assert rel < 3e-7


def test_special_values_and_gradient():
    x = torch.tensor([float("nan"), float("inf"), -float("inf"), 0.0, -0.0])
    got = asinh(x)
    assert torch.isnan(got[0])
    assert got[1:3].tolist() == [float("inf"), -float("inf")]
    assert got[3:].tolist() == [0.0, 0.0]
    t = torch.linspace(-50, 50, 101, dtype=torch.float64, requires_grad=True)
    asinh(t).sum().backward()  # through torch.asinh, so 0 too has its gradient
    torch.testing.assert_close(t.grad, 1 / torch.sqrt(1 + t.detach() ** 2))
