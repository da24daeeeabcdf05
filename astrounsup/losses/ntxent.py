"""NT-Xent, the normalised-temperature cross-entropy of SimCLR (Chen et al. 2020)."""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 - the PyTorch convention
from torch import nn

__all__ = ["NTXentLoss"]


def _gather_across_ranks(z):
    """All ranks' embeddings, with gradients flowing back to this rank's own slice."""
    import torch.distributed as dist

    world = dist.get_world_size()
    parts = [torch.zeros_like(z) for _ in range(world)]
    dist.all_gather(parts, z.contiguous())
    parts[dist.get_rank()] = z
    return torch.cat(parts, dim=0), dist.get_rank() * z.shape[0]


class NTXentLoss(nn.Module):
    """NT-Xent over two views: each embedding's positive is the other view of its object,
    every other embedding of both views is a negative.

    Parameters
    ----------
    temperature : float, optional
        > 0.
    gather_distributed : bool, optional
        In multi-process training, draw negatives from every rank's batch.

    Examples
    --------
    >>> z = torch.nn.functional.normalize(torch.randn(8, 16), dim=1)
    >>> loss = NTXentLoss(temperature=0.5)(z, z + 0.01)
    >>> loss.ndim
    0
    """

    def __init__(self, *, temperature=0.5, gather_distributed=False):
        super().__init__()
        if not (isinstance(temperature, (int, float)) and temperature > 0):
            msg = f"temperature must be > 0; got {temperature!r}"
            raise ValueError(msg)
        self.temperature = float(temperature)
        self.gather_distributed = gather_distributed

    def forward(self, z_a, z_b):
        """``z_a``, ``z_b``: (B, D) embeddings of the two views of B objects."""
        if z_a.shape != z_b.shape or z_a.ndim != 2:
            msg = f"z_a and z_b must both be (B, D); got {tuple(z_a.shape)} and {tuple(z_b.shape)}"
            raise ValueError(msg)
        z_a, z_b = F.normalize(z_a, dim=1), F.normalize(z_b, dim=1)
        n = z_a.shape[0]
        offset = 0
        all_a, all_b = z_a, z_b
        import torch.distributed as dist

        if self.gather_distributed and dist.is_available() and dist.is_initialized():
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
        return F.cross_entropy(logits, positive)
