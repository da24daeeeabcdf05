"""Training: a plain PyTorch loop with checkpoints that resume exactly."""

from astrounsup.training.checkpoint import load_checkpoint, save_checkpoint
from astrounsup.training.objectives import (
    contrastive_objective,
    denoising_objective,
    reconstruction_objective,
    rotation_objective,
)
from astrounsup.training.recipes import MODELS, build_model, load_config, load_model, train_store
from astrounsup.training.trainer import Trainer, TrainingHistory, select_device, warmup_cosine

__all__ = [
    "MODELS",
    "Trainer",
    "TrainingHistory",
    "build_model",
    "contrastive_objective",
    "denoising_objective",
    "load_checkpoint",
    "load_config",
    "load_model",
    "reconstruction_objective",
    "rotation_objective",
    "save_checkpoint",
    "select_device",
    "train_store",
    "warmup_cosine",
]
