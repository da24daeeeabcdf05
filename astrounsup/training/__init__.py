"""Training: a plain PyTorch loop with checkpoints that resume exactly."""

from astrounsup.training.checkpoint import load_checkpoint, save_checkpoint
from astrounsup.training.objectives import (
    contrastive_objective,
    denoising_objective,
    reconstruction_objective,
    rotation_objective,
)
from astrounsup.training.trainer import Trainer, TrainingHistory, select_device, warmup_cosine

__all__ = [
    "Trainer",
    "TrainingHistory",
    "contrastive_objective",
    "denoising_objective",
    "load_checkpoint",
    "reconstruction_objective",
    "rotation_objective",
    "save_checkpoint",
    "select_device",
    "warmup_cosine",
]
