"""NT-Xent, the normalised-temperature cross-entropy of SimCLR (Chen et al. 2020), and its
decoupled form (Yeh et al. 2022)."""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 - the PyTorch convention
from torch import nn

from astrounsup._ranks import in_process_group, rank_and_world

__all__ = ["NTXentLoss"]


class _GatherWithGradient(torch.autograd.Function):
    """``all_gather`` of equal-shaped tensors, concatenated in rank order, whose backward
    gives each rank the sum over ranks of the gradient on its own slice (an all-reduce of
    the small embedding gradient, which every backend has)."""

    @staticmethod
    def forward(ctx, z):
        import torch.distributed as dist

        parts = [torch.empty_like(z) for _ in range(rank_and_world()[1])]
        dist.all_gather(parts, z.contiguous())
        ctx.rank, ctx.n = rank_and_world()[0], z.shape[0]
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx, grad):
        import torch.distributed as dist

        grad = grad.contiguous().clone()
        dist.all_reduce(grad)  # every rank's loss, on every rank's embeddings
        return grad[ctx.rank * ctx.n : (ctx.rank + 1) * ctx.n]


def _gather_across_ranks(z):
    """All ranks' embeddings, concatenated in rank order, and where this rank's start.

    The gather is part of the graph: its backward sends each rank the gradients that every
    rank's loss puts on its embeddings, so the gradient averaged over ranks is that of one
    process on the whole batch. Ranks may hold different numbers of embeddings (a global
    batch that does not split evenly): each is padded to the largest for the gather and cut
    back after it.
    """
    import torch.distributed as dist

    rank, world = rank_and_world()
    size = torch.tensor([z.shape[0]], device=z.device)
    sizes = [torch.zeros_like(size) for _ in range(world)]
    dist.all_gather(sizes, size)
    sizes = [int(s) for s in sizes]
    most = max(sizes)
    gathered = _GatherWithGradient.apply(F.pad(z, (0, 0, 0, most - z.shape[0])))
    parts = [gathered[r * most : r * most + k] for r, k in enumerate(sizes)]
    return torch.cat(parts, dim=0), sum(sizes[:rank])


def _rank_weight(n, total):
    """What this rank's mean loss over its ``n`` of ``total`` objects is multiplied by, so
    that the mean over ranks (what DistributedDataParallel's gradient averaging forms) is
    the mean over all objects: world * n / total (1 when the batch splits evenly)."""
    return rank_and_world()[1] * n / total


class NTXentLoss(nn.Module):
    """NT-Xent over two views: each embedding's positive is the other view of its object,
    every other embedding of both views is a negative.

    Parameters
    ----------
    temperature : float, optional
        > 0.
    gather_distributed : bool, optional
        In multi-process training, draw negatives from every rank's batch. Gradients flow
        through the gather and each rank's loss is weighted by its share of the objects,
        so the ranks' averaged gradient (what DistributedDataParallel applies) equals
        that of one process on the whole batch.
    decoupled : bool, optional
        Leave the positive out of the softmax denominator (the decoupled contrastive loss
        of Yeh et al. 2022): ``-s_pos / T + log sum_neg exp(s_neg / T)``. Without the
        positive in the denominator, the gradient is not damped when the positive already
        dominates, which matters most for small batches.

    Examples
    --------
    >>> z = torch.nn.functional.normalize(torch.randn(8, 16), dim=1)
    >>> loss = NTXentLoss(temperature=0.5)(z, z + 0.01)
    >>> loss.ndim
    0
    >>> bool(NTXentLoss(temperature=0.5, decoupled=True)(z, z + 0.01) < loss)
    True
    """

    def __init__(self, *, temperature=0.5, gather_distributed=False, decoupled=False):
        super().__init__()
        if not (isinstance(temperature, (int, float)) and temperature > 0):
            msg = f"temperature must be > 0; got {temperature!r}"
            raise ValueError(msg)
        self.temperature = float(temperature)
        self.gather_distributed = gather_distributed
        if not isinstance(decoupled, bool):
            msg = f"decoupled must be True or False; got {decoupled!r}"
            raise ValueError(msg)
        self.decoupled = decoupled

    def forward(self, z_a, z_b):
        """``z_a``, ``z_b``: (B, D) embeddings of the two views of B objects."""
        if z_a.shape != z_b.shape or z_a.ndim != 2:
            msg = f"z_a and z_b must both be (B, D); got {tuple(z_a.shape)} and {tuple(z_b.shape)}"
            raise ValueError(msg)
        z_a, z_b = F.normalize(z_a, dim=1), F.normalize(z_b, dim=1)
        n = z_a.shape[0]
        offset = 0
        all_a, all_b = z_a, z_b
        if self.gather_distributed and in_process_group():
            all_a, offset = _gather_across_ranks(z_a)
            all_b, _ = _gather_across_ranks(z_b)
        candidates = torch.cat([all_a, all_b], dim=0)  # (2N_total, D)
        total = all_a.shape[0]
        queries = torch.cat([z_a, z_b], dim=0)  # (2n, D)
        logits = queries @ candidates.T / self.temperature
        rows = torch.arange(2 * n, device=z_a.device)
        own = torch.cat([rows[:n] + offset, rows[:n] + offset + total])
        logits[rows, own] = float("-inf")  # an embedding is not its own negative
        positive = torch.cat([rows[:n] + offset + total, rows[:n] + offset])
        if self.decoupled:
            pos = logits[rows, positive]
            logits[rows, positive] = float("-inf")  # the denominator: negatives only
            loss = (torch.logsumexp(logits, dim=1) - pos).mean()
        else:
            loss = F.cross_entropy(logits, positive)
        return loss if total == n else loss * _rank_weight(n, total)
