import math

import numpy as np
import pytest
import torch

from astrounsup.losses import (
    GaussianNLLLoss,
    MaskedMSELoss,
    NTXentLoss,
    correlation_penalty,
    gaussian_kl,
)

G = torch.Generator().manual_seed(0)


class TestMaskedMSE:
    def test_equals_unmasked_loss_on_unmasked_pixels_only(self):
        pred, target = torch.randn(4, 3, 8, 8, generator=G), torch.randn(4, 3, 8, 8, generator=G)
        mask = torch.rand(4, 3, 8, 8, generator=G) < 0.3
        per = MaskedMSELoss(reduction="none")(pred, target, mask)
        for b in range(4):
            keep = ~mask[b]
            expected = float(((pred[b][keep] - target[b][keep]) ** 2).mean())
            assert float(per[b]) == pytest.approx(expected, rel=1e-6)
        # masked pixels can hold anything, even NaN-filled junk, without changing the loss
        junk = pred.clone()
        junk[mask] = 1e6
        torch.testing.assert_close(MaskedMSELoss(reduction="none")(junk, target, mask), per)

    def test_no_mask_is_plain_mse(self):
        pred, target = torch.randn(2, 1, 4, 4, generator=G), torch.randn(2, 1, 4, 4, generator=G)
        torch.testing.assert_close(
            MaskedMSELoss()(pred, target), torch.nn.functional.mse_loss(pred, target)
        )

    def test_bad_arguments(self):
        with pytest.raises(ValueError, match="reduction must be 'mean', 'sum' or 'none'"):
            MaskedMSELoss(reduction="max")
        with pytest.raises(ValueError, match="mask must have the shape of the images"):
            MaskedMSELoss()(
                torch.zeros(1, 1, 2, 2),
                torch.zeros(1, 1, 2, 2),
                torch.zeros(1, 1, 3, 3, dtype=torch.bool),
            )


class TestGaussianNLL:
    def test_matches_the_formula(self):
        mean, target = torch.randn(2, 2, 4, 4, generator=G), torch.randn(2, 2, 4, 4, generator=G)
        var = torch.rand(2, 2, 4, 4, generator=G) + 0.1
        got = GaussianNLLLoss(reduction="none")(mean, target, var)
        ref = 0.5 * (torch.log(2 * math.pi * var) + (target - mean) ** 2 / var)
        torch.testing.assert_close(got, ref.mean(dim=(1, 2, 3)))

    def test_matches_torch_gaussian_nll(self):
        mean, target = torch.randn(3, 1, 5, 5, generator=G), torch.randn(3, 1, 5, 5, generator=G)
        var = torch.full((3, 1, 5, 5), 0.7)
        ours = GaussianNLLLoss()(mean, target, var)
        theirs = torch.nn.functional.gaussian_nll_loss(mean, target, var, full=True)
        torch.testing.assert_close(ours, theirs)

    def test_per_band_variance_and_mask(self):
        mean, target = torch.zeros(1, 2, 2, 2), torch.ones(1, 2, 2, 2)
        mask = torch.zeros(1, 2, 2, 2, dtype=torch.bool)
        mask[0, 1] = True  # only band 0 counts
        got = GaussianNLLLoss()(mean, target, torch.tensor([1.0, 4.0]).view(1, 2, 1, 1), mask)
        assert float(got) == pytest.approx(0.5 * (math.log(2 * math.pi) + 1.0))


class TestGaussianKL:
    def test_against_monte_carlo(self):
        mu = torch.tensor([[0.3, -1.2, 0.7]])
        log_var = torch.tensor([[-0.5, 0.4, 0.0]])
        g = torch.Generator().manual_seed(1)
        std = torch.exp(0.5 * log_var)
        z = mu + std * torch.randn(400_000, 3, generator=g)
        log_q = torch.distributions.Normal(mu, std).log_prob(z).sum(-1)
        log_p = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
        mc = float((log_q - log_p).mean())
        assert float(gaussian_kl(mu, log_var)[0]) == pytest.approx(mc, abs=0.01)

    def test_shape_mismatch(self):
        with pytest.raises(ValueError, match="mu and log_var must have one shape"):
            gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 4))


def _ntxent_double_loop(z_a, z_b, t, *, decoupled=False):
    """Reference: the SimCLR loss written pair by pair (decoupled: the positive left out of
    the denominator)."""
    z = torch.nn.functional.normalize(torch.cat([z_a, z_b]), dim=1).double()
    n2 = z.shape[0]
    n = n2 // 2
    total = 0.0
    for i in range(n2):
        j = (i + n) % n2
        num = math.exp(float(z[i] @ z[j]) / t)
        den = sum(
            math.exp(float(z[i] @ z[k]) / t)
            for k in range(n2)
            if k != i and not (decoupled and k == j)
        )
        total += -math.log(num / den)
    return total / n2


class TestNTXent:
    @pytest.mark.parametrize("t", [0.1, 0.5, 1.0])
    def test_against_double_loop(self, t):
        z_a, z_b = torch.randn(6, 5, generator=G), torch.randn(6, 5, generator=G)
        got = float(NTXentLoss(temperature=t)(z_a, z_b))
        assert got == pytest.approx(_ntxent_double_loop(z_a, z_b, t), rel=1e-5)

    @pytest.mark.parametrize("t", [0.2, 1.0])
    def test_decoupled_against_double_loop(self, t):
        z_a, z_b = torch.randn(6, 5, generator=G), torch.randn(6, 5, generator=G)
        got = float(NTXentLoss(temperature=t, decoupled=True)(z_a, z_b))
        want = _ntxent_double_loop(z_a, z_b, t, decoupled=True)
        assert got == pytest.approx(want, rel=1e-5)

    def test_aligned_views_score_better(self):
        z = torch.randn(16, 8, generator=G)
        loss = NTXentLoss(temperature=0.2)
        assert float(loss(z, z + 0.01 * torch.randn(16, 8, generator=G))) < float(
            loss(z, torch.randn(16, 8, generator=G))
        )

    def test_bad_arguments(self):
        with pytest.raises(ValueError, match="temperature must be > 0"):
            NTXentLoss(temperature=0.0)
        with pytest.raises(ValueError, match=r"z_a and z_b must both be \(B, D\)"):
            NTXentLoss()(torch.zeros(4, 3), torch.zeros(5, 3))
        with pytest.raises(ValueError, match="decoupled must be True or False; got 'yes'"):
            NTXentLoss(decoupled="yes")


def _correlation_penalty_numpy(z):
    c = np.corrcoef(z, rowvar=False)
    d = c.shape[0]
    return float((np.sum(c**2) - np.sum(np.diag(c) ** 2)) / (d * (d - 1)))


class TestCorrelationPenalty:
    def test_against_numpy_corrcoef(self):
        z = torch.randn(50, 6, generator=G, dtype=torch.float64)
        z[:, 1] += 0.8 * z[:, 0]  # one correlated pair
        z[:, 4] -= 2.0 * z[:, 2]
        want = _correlation_penalty_numpy(z.numpy())
        assert float(correlation_penalty(z, eps=0.0)) == pytest.approx(want, rel=1e-5)
        assert want > 0.05

    def test_limits(self):
        x = torch.randn(64, 1, generator=G)
        assert float(correlation_penalty(torch.cat([x, -3 * x, 0.5 * x], dim=1))) == (
            pytest.approx(1.0, abs=1e-3)
        )
        # Exactly uncorrelated columns (orthogonal, zero-mean): 0.
        q, _ = torch.linalg.qr(torch.randn(64, 4, generator=G, dtype=torch.float64))
        q = q - q.mean(dim=0)
        q, _ = torch.linalg.qr(q)
        assert float(correlation_penalty(q - q.mean(dim=0), eps=0.0)) < 1e-3

    def test_scale_free_and_constant_columns(self):
        z = torch.randn(32, 5, generator=G)
        scaled = z * torch.tensor([1.0, 10.0, 0.1, 3.0, 1e3]) + 7.0
        assert float(correlation_penalty(scaled, eps=0.0)) == pytest.approx(
            float(correlation_penalty(z, eps=0.0)), rel=1e-4
        )
        z[:, 2] = 4.0  # a constant feature: zero correlations, not NaN
        assert torch.isfinite(correlation_penalty(z))

    def test_half_precision_input_computed_in_float32(self):
        z = torch.randn(32, 8, generator=G)
        got = correlation_penalty(z.to(torch.bfloat16))
        assert got.dtype == torch.float32
        assert float(got) == pytest.approx(float(correlation_penalty(z)), abs=0.02)

    def test_lowers_the_correlation_when_minimised(self):
        w = torch.eye(4) + 0.9  # mixes the features: strongly correlated output
        w.requires_grad_(True)
        x = torch.randn(256, 4, generator=G)
        opt = torch.optim.SGD([w], lr=0.5)
        first = float(correlation_penalty(x @ w).detach())
        for _ in range(50):
            opt.zero_grad()
            correlation_penalty(x @ w).backward()
            opt.step()
        assert float(correlation_penalty(x @ w).detach()) < 0.2 * first

    @pytest.mark.parametrize("shape", [(1, 4), (8, 1), (8,), (2, 3, 4)])
    def test_bad_shapes(self, shape):
        with pytest.raises(ValueError, match=r"z must be \(B, D\) with B >= 2 and D >= 2"):
            correlation_penalty(torch.zeros(shape))


def test_losses_are_differentiable():
    pred = torch.randn(2, 1, 4, 4, generator=G, requires_grad=True)
    MaskedMSELoss()(pred, torch.zeros(2, 1, 4, 4)).backward()
    assert pred.grad is not None
    assert np.isfinite(pred.grad.numpy()).all()


def _ntxent_rank(rank, world, port, x_a, x_b, weight, out, decoupled):
    import torch.distributed as dist

    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
    )
    try:
        mine = torch.arange(x_a.shape[0])[rank::world]  # as the Trainer splits a batch
        w = weight.clone().requires_grad_()
        loss = NTXentLoss(temperature=0.3, gather_distributed=True, decoupled=decoupled)(
            x_a[mine] @ w, x_b[mine] @ w
        )
        loss.backward()
        grad = w.grad.clone()
        dist.all_reduce(grad)  # what DistributedDataParallel does: the mean over ranks
        out[rank] = (loss.detach().item(), (grad / world).numpy())
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize(
    ("world", "n", "decoupled"),
    [(2, 8, True), (3, 8, False), pytest.param(4, 8, False, marks=pytest.mark.slow)],
)
def test_negatives_gathered_across_gloo_ranks_give_the_one_process_gradient(world, n, decoupled):
    """Ranks with a part of the batch each (3 ranks: 3, 3 and 2 objects), their gradients
    averaged, give each parameter's gradient of one process on the whole batch."""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    g = torch.Generator().manual_seed(world)
    x_a = torch.randn(n, 6, generator=g, dtype=torch.float64)
    x_b = torch.randn(n, 6, generator=g, dtype=torch.float64)
    weight = torch.randn(6, 5, generator=g, dtype=torch.float64)
    out = mp.get_context("spawn").Manager().dict()
    mp.spawn(_ntxent_rank, args=(world, port, x_a, x_b, weight, out, decoupled), nprocs=world)
    w = weight.clone().requires_grad_()
    full = NTXentLoss(temperature=0.3, decoupled=decoupled)(x_a @ w, x_b @ w)
    full.backward()
    # Each rank's loss is weighted by its share of the objects: their mean is the whole's.
    losses = [out[r][0] for r in range(world)]
    assert sum(losses) / world == pytest.approx(full.item(), rel=1e-10)
    for r in range(world):
        np.testing.assert_allclose(out[r][1], w.grad.numpy(), rtol=1e-6, atol=1e-9)
