"""Training: a plain PyTorch loop with checkpoints that resume exactly."""

from astrounsup.training.checkpoint import load_checkpoint, save_checkpoint
from astrounsup.training.trainer import (
    Trainer,
    TrainingHistory,
    reconstruction_objective,
    select_device,
    warmup_cosine,
)

__all__ = [
    "Trainer",
    "TrainingHistory",
    "load_checkpoint",
    "reconstruction_objective",
    "save_checkpoint",
    "select_device",
    "warmup_cosine",
]
