"""A plain PyTorch training loop: devices, mixed precision, schedules, checkpoints, resume."""

from __future__ import annotations

import contextlib
import math
import numbers
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from astrounsup._devices import select_device
from astrounsup._progress import progress_bar
from astrounsup._provenance import provenance
from astrounsup._ranks import in_process_group, rank_and_world
from astrounsup.training.checkpoint import _load_weights, load_checkpoint, save_checkpoint
from astrounsup.training.objectives import reconstruction_objective

__all__ = [
    "Trainer",
    "TrainingHistory",
    "check_training_settings",
    "select_device",
    "warmup_cosine",
]


# Independent random streams of a run, each seeded by (seed, stream, index).
_STREAMS = {"split": 1, "epoch": 2, "step": 3, "val": 4}


def short_run_warmup(warmup_steps, max_steps):
    """The warm-up a run of ``max_steps`` keeps: ``warmup_steps``, at most a fifth of the
    run, so that a shortened run still spends most of its steps at the full rate.

    Examples
    --------
    >>> short_run_warmup(50, 1000), short_run_warmup(50, 100)
    (50, 20)
    """
    return min(int(warmup_steps), int(max_steps) // 5)


def warmup_cosine(optimizer, *, warmup_steps, total_steps, min_ratio=0.0):
    """Linear warm-up over ``warmup_steps``, then cosine decay to ``min_ratio`` of the rate."""
    if not 0 <= warmup_steps <= total_steps:
        msg = f"warmup_steps must be in [0, total_steps={total_steps}]; got {warmup_steps!r}"
        raise ValueError(msg)

    def factor(step):
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        span = max(1, total_steps - warmup_steps)
        progress = min(1.0, (step - warmup_steps) / span)
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@dataclass
class TrainingHistory:
    """Loss per step and validation loss per evaluation."""

    step: list = field(default_factory=list)
    loss: list = field(default_factory=list)
    val_step: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)

    def as_dict(self):
        """The four lists by name (what ``history.json`` of a run holds)."""
        return {
            "step": self.step,
            "loss": self.loss,
            "val_step": self.val_step,
            "val_loss": self.val_loss,
        }


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


#: Each training setting: (check, what is allowed) for :func:`check_training_settings`.
_SETTINGS = {
    "max_steps": (lambda v: _is_int(v) and v > 0, "a positive integer"),
    "batch_size": (lambda v: _is_int(v) and v > 0, "a positive integer"),
    "eval_every": (lambda v: _is_int(v) and v > 0, "a positive integer"),
    "warmup_steps": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    "seed": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    "patience": (lambda v: v is None or (_is_int(v) and v > 0), "a positive integer or none"),
    "checkpoint_every": (
        lambda v: v is None or (_is_int(v) and v > 0),
        "a positive number of steps or none",
    ),
    "checkpoint_minutes": (
        lambda v: v is None or (_is_real(v) and v > 0),
        "a positive number of minutes or none",
    ),
    "lr": (lambda v: _is_real(v) and 0 <= v <= 10, "a number in [0, 10]"),
    "weight_decay": (lambda v: _is_real(v) and v >= 0, "a number >= 0"),
    "grad_clip": (lambda v: v is None or (_is_real(v) and v >= 0), "a number >= 0 or none"),
    "val_fraction": (lambda v: _is_real(v) and 0 <= v < 1, "a number in [0, 1)"),
    "amp": (lambda v: v in ("auto", "bf16", "fp16", "off"), "'auto', 'bf16', 'fp16' or 'off'"),
    "compile": (lambda v: isinstance(v, bool), "true or false"),
}


def check_training_settings(**settings):
    """Refuse a training setting of the wrong type or range, naming it, what is allowed
    and what was given (``true`` is not a batch size, nor ``-3`` a checkpoint interval).

    Raises
    ------
    ValueError

    Examples
    --------
    >>> check_training_settings(batch_size=True)
    Traceback (most recent call last):
    ...
    ValueError: batch_size must be a positive integer; got True
    """
    for name, value in settings.items():
        check, allowed = _SETTINGS[name]
        if not check(value):
            msg = f"{name} must be {allowed}; got {value!r}"
            raise ValueError(msg)


class Trainer:
    """Train a model on a :class:`astrounsup.io.CutoutDataset`.

    Every random draw of step ``s`` (the batch order of its epoch, augmentations, a VAE's
    noise) comes from generators seeded by ``(seed, s)``: a run interrupted and resumed
    from a checkpoint ends, on the CPU, with exactly the weights of an uninterrupted run.

    Under ``torchrun`` (an initialised ``torch.distributed`` process group) the model is
    wrapped in ``DistributedDataParallel``: each rank takes its share of every global
    batch of ``batch_size`` cutouts, gradients are averaged across ranks, validation losses
    are averaged, and only rank 0 writes checkpoints. The same command scales from 2 CPU
    processes (gloo) to many GPUs and nodes (``torchrun --nnodes N --nproc_per_node G``).

    Parameters
    ----------
    model : torch.nn.Module
        With ``loss(...)`` as in :mod:`astrounsup.models`.
    objective : callable, optional
        ``objective(model, images, masks, generator) -> dict`` with a scalar ``"loss"``;
        default :func:`reconstruction_objective`.
    max_steps : int
        Optimiser steps to train for (one batch each).
    batch_size : int, optional
        Cutouts per step (the global batch, shared among ranks under ``torchrun``).
    lr : float, optional
        Peak learning rate of AdamW, reached after the warm-up and decayed along a cosine
        to 0 at ``max_steps`` (:func:`warmup_cosine`).
    weight_decay : float, optional
        AdamW's decoupled weight decay.
    warmup_steps : int, optional
        Steps over which the learning rate rises linearly from 0 to ``lr``.
    grad_clip : float or None, optional
        Gradients are rescaled so that their total norm is at most this (``None``: not
        clipped).
    val_fraction : float, optional
        Share of the dataset held out for validation, in [0, 1).
    eval_every : int, optional
        Steps between validations.
    patience : int or None, optional
        Stop after this many validations without improvement.
    checkpoint_every : int or None, optional
        Steps between checkpoints (one is always written at the end) in ``out_dir``.
    checkpoint_minutes : float or None, optional
        Also write a checkpoint when this long has passed since the last one (with
        ``out_dir``), so that a killed run loses at most that much; ``None``: only
        ``checkpoint_every`` and the end.
    out_dir : path, optional
        Folder of the checkpoints (``None``: none written).
    device : str or torch.device, optional
        Default :func:`select_device`.
    amp : {"auto", "bf16", "fp16", "off"}, optional
        Mixed precision on CUDA (``"auto"``: bf16 where supported); off on the CPU.
    seed : int, optional
        Seeds every random draw of the run (batch order, augmentations, a VAE's noise).
    progress : bool, optional
        A progress bar with loss and throughput (``tqdm.auto``).
    extra_state : dict, optional
        Saved in every checkpoint (e.g. normalisation parameters and band names).
    compile : bool, optional
        Compile the training step with ``torch.compile`` (worth it on GPUs and long runs).
    """

    def __init__(
        self,
        model,
        *,
        max_steps,
        objective=None,
        batch_size=64,
        lr=1e-3,
        weight_decay=0.0,
        warmup_steps=0,
        grad_clip=1.0,
        val_fraction=0.1,
        eval_every=50,
        patience=None,
        checkpoint_every=None,
        checkpoint_minutes=5.0,
        out_dir=None,
        device=None,
        amp="auto",
        seed=0,
        progress=True,
        extra_state=None,
        compile=False,
    ):
        check_training_settings(
            max_steps=max_steps, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
            warmup_steps=warmup_steps, grad_clip=grad_clip, val_fraction=val_fraction,
            eval_every=eval_every, patience=patience, checkpoint_every=checkpoint_every,
            checkpoint_minutes=checkpoint_minutes, amp=amp, seed=seed, compile=compile,
        )  # fmt: skip
        if checkpoint_every is not None and out_dir is None:
            msg = "checkpoint_every needs out_dir, where the checkpoints go"
            raise ValueError(msg)
        self.distributed = in_process_group()
        self.rank, self.world = rank_and_world()
        if self.distributed and device is None and torch.cuda.is_available():
            device = f"cuda:{self.rank % torch.cuda.device_count()}"
        self.device = select_device(device)
        self.model = model.to(self.device)
        self.objective = objective or reconstruction_objective
        self.max_steps, self.batch_size = max_steps, batch_size
        self.grad_clip, self.val_fraction = grad_clip, val_fraction
        self.eval_every, self.patience = eval_every, patience
        self.checkpoint_every = checkpoint_every
        self.checkpoint_minutes = checkpoint_minutes
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.seed, self.progress = int(seed), bool(progress)
        self.extra_state = dict(extra_state or {})
        self.compile = bool(compile)
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
        self.scheduler = warmup_cosine(
            self.optimizer, warmup_steps=warmup_steps, total_steps=max_steps
        )
        self.amp_dtype = self._amp_dtype(amp)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.step = 0
        self.history = TrainingHistory()
        self.best_val, self.bad_evals = math.inf, 0

    def _amp_dtype(self, amp):
        if self.device.type != "cuda" or amp == "off":
            return None
        if amp == "fp16" or (amp == "auto" and not torch.cuda.is_bf16_supported()):
            return torch.float16
        return torch.bfloat16

    def _generator(self, stream, k=0):
        """A generator for draw ``k`` of ``stream``, the same in every process and run."""
        import numpy as np

        words = np.random.SeedSequence([self.seed, _STREAMS[stream], int(k)])
        g = torch.Generator()
        g.manual_seed(int(words.generate_state(2, dtype=np.uint64)[0] >> np.uint64(1)))
        return g

    def _split(self, n):
        order = torch.randperm(n, generator=self._generator("split"))
        n_val = round(self.val_fraction * n)
        return order[n_val:], order[:n_val]

    def _batch_indices(self, train_idx, step):
        per_epoch = max(1, len(train_idx) // self.batch_size)
        epoch, k = divmod(step, per_epoch)
        perm = train_idx[torch.randperm(len(train_idx), generator=self._generator("epoch", epoch))]
        return perm[k * self.batch_size : (k + 1) * self.batch_size]

    def _to_device(self, images, masks):
        pin = self.device.type == "cuda"
        if pin:
            images, masks = images.pin_memory(), masks.pin_memory()
        return (images.to(self.device, non_blocking=pin), masks.to(self.device, non_blocking=pin))

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=self.amp_dtype)

    def _wrapped(self):
        """The module whose forward computes the loss: under DDP, gradients sync there."""
        step_module = _ObjectiveModule(self.model, self.objective)
        if self.compile:
            step_module = torch.compile(step_module)
        if not self.distributed:
            return step_module
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(step_module, device_ids=ids)

    def fit(self, dataset):
        """Train until ``max_steps`` (or early stopping); returns the history."""
        train_idx, val_idx = self._split(len(dataset))
        step_module = self._wrapped()
        if len(train_idx) < self.batch_size:
            msg = (
                f"the training split has {len(train_idx)} cutouts, fewer than batch_size="
                f"{self.batch_size}; use a smaller batch or val_fraction"
            )
            raise ValueError(msg)
        steps = range(self.step, self.max_steps)
        bar = progress_bar(
            total=self.max_steps, initial=self.step, desc="training", unit="step",
            enabled=self.progress,
        )  # fmt: skip
        self.model.train()
        for step in steps:
            idx = self._batch_indices(train_idx, step)[self.rank :: self.world]
            images, masks, _ = dataset[idx.tolist()]
            images, masks = self._to_device(images, masks)
            with self._autocast():
                loss = step_module(
                    images, masks, self._generator("step", step * self.world + self.rank)
                )
            if not torch.isfinite(loss):
                msg = (
                    f"loss is {float(loss.detach())} at step {step} (lr {self.lr:g}); lower lr "
                    "or check the data"
                )
                raise FloatingPointError(msg)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            if self.grad_clip:
                self.scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.scheduler.step()
            self.step = step + 1
            self.history.step.append(self.step)
            self.history.loss.append(float(loss.detach()))
            bar.update(1)
            if self.progress:
                rate = bar.format_dict.get("rate") or 0.0
                bar.set_postfix(
                    loss=f"{self.history.loss[-1]:.4g}", cutouts_s=f"{rate * self.batch_size:.0f}"
                )
            if (
                len(val_idx)
                and self.step % self.eval_every == 0
                and self._validate(dataset, val_idx)
            ):
                break
            periodic = self.checkpoint_every and self.step % self.checkpoint_every == 0
            if periodic or self._checkpoint_due():
                self._save_on_rank0(self.out_dir / "last.pt")
        bar.close()
        if self.out_dir is not None:
            self._save_on_rank0(self.out_dir / "last.pt")
        return self.history

    def _save_on_rank0(self, path):
        self._last_save = time.monotonic()
        if self.rank == 0:
            self.save(path)

    def _checkpoint_due(self):
        """Whether ``checkpoint_minutes`` have passed since the last checkpoint (decided on
        process 0 and shared, so that every process agrees)."""
        if self.out_dir is None or self.checkpoint_minutes is None:
            return False
        last = getattr(self, "_last_save", None)
        if last is None:
            self._last_save = last = time.monotonic()
        due = time.monotonic() - last >= 60.0 * self.checkpoint_minutes
        if self.distributed:
            import torch.distributed as dist

            flag = torch.tensor([float(due)], device=self.device)
            dist.broadcast(flag, src=0)
            due = bool(flag.item())
        return due

    @torch.no_grad()
    def _validate(self, dataset, val_idx):
        """Record the validation loss; True when early stopping says stop."""
        self.model.eval()
        total, count = 0.0, 0
        for lo in range(0, len(val_idx), self.batch_size):
            idx = val_idx[lo : lo + self.batch_size][self.rank :: self.world]
            if not len(idx):
                continue
            images, masks, _ = dataset[idx.tolist()]
            images, masks = self._to_device(images, masks)
            with self._autocast():
                terms = self.objective(self.model, images, masks, self._generator("val", lo))
            total += float(terms["loss"]) * len(idx)
            count += len(idx)
        self.model.train()
        if self.distributed:
            import torch.distributed as dist

            sums = torch.tensor([total, count], dtype=torch.float64, device=self.device)
            dist.all_reduce(sums)
            total, count = float(sums[0]), float(sums[1])
        val = total / count
        self.history.val_step.append(self.step)
        self.history.val_loss.append(val)
        if val < self.best_val:
            self.best_val, self.bad_evals = val, 0
            return False
        self.bad_evals += 1
        return self.patience is not None and self.bad_evals >= self.patience

    def state_dict(self):
        """Everything a resumed run needs, in types ``torch.load(weights_only=True)`` reads."""
        return {
            "format": "astrounsup.checkpoint",
            "provenance": provenance("astrounsup.training.Trainer"),
            "model": self.model.state_dict(),
            "model_class": type(self.model).__name__,
            "model_config": dict(getattr(self.model, "config", {})),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "step": self.step,
            "seed": self.seed,
            "history": self.history.as_dict(),
            "best_val": self.best_val,
            "bad_evals": self.bad_evals,
            "torch_rng": torch.get_rng_state(),
            "extra": self.extra_state,
        }

    def save(self, path):
        """Write a checkpoint atomically."""
        return save_checkpoint(path, self.state_dict())

    def resume(self, path):
        """Continue from a checkpoint written by :meth:`save`."""
        state = load_checkpoint(path, map_location=self.device)
        if "optimizer" not in state:
            msg = (
                f"{path}: holds a trained model without its optimiser state (written by "
                "TrainedModel.save), so training cannot resume from it"
            )
            raise ValueError(msg)
        if state["model_class"] != type(self.model).__name__:
            msg = f"{path}: holds a {state['model_class']}, not a {type(self.model).__name__}"
            raise ValueError(msg)
        _load_weights(self.model, state, path)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.step, self.seed = int(state["step"]), int(state["seed"])
        self.history = TrainingHistory(**state["history"])
        self.best_val, self.bad_evals = float(state["best_val"]), int(state["bad_evals"])
        torch.set_rng_state(state["torch_rng"].cpu())
        return self


class _ObjectiveModule(torch.nn.Module):
    """Wraps a model so that ``forward`` returns its training loss (what DDP needs)."""

    def __init__(self, model, objective):
        super().__init__()
        self.model = model
        self.objective = objective

    def forward(self, images, masks, generator):
        return self.objective(self.model, images, masks, generator)["loss"]
