"""The training step, with the files a run keeps."""

from __future__ import annotations

import copy
from pathlib import Path

from astrounsup._config import merge_config
from astrounsup.plotting import loss_curve_figure, save_figure
from astrounsup.training import LOSS_LABELS, is_main_process, train

__all__ = ["TRAIN_DEFAULTS", "train_model"]

#: Settings of :func:`train_model` (the ``[model]`` table of a pipeline config):
#: ``recipe`` (:data:`astrounsup.training.MODELS`), ``steps`` (overrides
#: ``config.training.max_steps``; 0 with ``init``: no training), ``config``, a partial
#: training config (:func:`astrounsup.training.resolve_config`), and ``init``: the initial
#: weights (``"pretrained"``, the encoder shipped with the package, or a checkpoint path;
#: :func:`astrounsup.training.train`).
TRAIN_DEFAULTS = {"recipe": "cae", "steps": None, "config": {}, "init": None}


def train_model(
    data, config=None, *, out=None, resume=False, device=None, progress=True, pixel_scale=None
):
    """Train a model on cutouts.

    Parameters
    ----------
    data : path, numpy.ndarray or astrounsup.io.CutoutDataset
        What :func:`astrounsup.training.train` takes.
    config : dict, optional
        Over :data:`TRAIN_DEFAULTS`.
    out : str or pathlib.Path, optional
        The run folder: ``last.pt`` (resumable), ``history.json`` and ``loss_curve.png``.
    resume : bool, optional
        Continue from ``out/last.pt`` (see :func:`astrounsup.training.train`).
    device : str, optional
    progress : bool, optional
        Show a progress bar.
    pixel_scale : float, optional
        Arcsec per pixel, for cutouts that do not know theirs.

    Returns
    -------
    astrounsup.training.TrainedModel
    """

    cfg = merge_config(TRAIN_DEFAULTS, config, owner="model")
    training_config = copy.deepcopy(cfg["config"] or {})
    if cfg["steps"] is not None:
        training_config.setdefault("training", {})["max_steps"] = cfg["steps"]
    trained = train(
        data, model=cfg["recipe"], config=training_config, out_dir=out, resume=resume,
        device=device, progress=progress, pixel_scale=pixel_scale, init=cfg["init"],
    )  # fmt: skip
    if out is not None and is_main_process() and trained.steps:
        h = trained.history
        batch = ((trained.config or {}).get("training") or {}).get("batch_size")
        title = (f"{trained.recipe} ({type(trained.model).__name__}, latent dim "
                 f"{trained.latent_dim}): {trained.steps} steps"
                 + (f", batch {batch}" if batch else ""))  # fmt: skip
        fig = loss_curve_figure(h.as_dict(), title=title,
                                loss_label=LOSS_LABELS.get(trained.recipe, "loss"))  # fmt: skip
        save_figure(fig, Path(out) / "loss_curve.png", dpi=100)
    return trained
