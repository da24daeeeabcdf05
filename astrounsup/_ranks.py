"""Which process this is among those ``torchrun`` started: the one place that asks."""

from __future__ import annotations

import os


def in_process_group():
    """Whether this process has joined a ``torch.distributed`` process group."""
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def rank_and_world():
    """This process's rank in its process group and the group's size; ``(0, 1)`` outside
    one."""
    if in_process_group():
        import torch.distributed as dist

        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def launch_rank():
    """The rank ``torchrun`` gave this process (``RANK``), known before any group is joined;
    0 when it was not launched by ``torchrun``."""
    return int(os.environ.get("RANK", "0"))
