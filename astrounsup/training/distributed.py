"""Joining the process group that ``torchrun`` sets up, and knowing which rank this is."""

from __future__ import annotations

import os

from astrounsup._ranks import in_process_group, rank_and_world

__all__ = ["init_from_environment", "is_main_process", "shutdown"]


def init_from_environment():
    """Join the process group when launched by ``torchrun`` (``RANK`` and ``WORLD_SIZE``
    are set): NCCL on CUDA machines, gloo elsewhere. Returns whether a group is active."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return False
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return True


def is_main_process():
    """True outside a process group, and on its rank 0 (the one that writes and prints)."""
    return rank_and_world()[0] == 0


def shutdown():
    """Leave the process group, if this process joined one."""
    if in_process_group():
        import torch.distributed as dist

        dist.destroy_process_group()
