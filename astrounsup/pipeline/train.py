"""The training and embedding steps, with the files a run keeps."""

from __future__ import annotations

import copy
from pathlib import Path

from astrounsup._config import merge_config

__all__ = ["TRAIN_DEFAULTS", "embed_latents", "train_model"]

#: Settings of :func:`train_model` (the ``[model]`` table of a pipeline config):
#: ``recipe`` (:data:`astrounsup.training.MODELS`), ``steps`` (overrides
#: ``config.training.max_steps``) and ``config``, a partial training config
#: (:func:`astrounsup.training.resolve_config`).
TRAIN_DEFAULTS = {"recipe": "cae", "steps": None, "config": {}}


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
    from astrounsup.plotting import loss_curve_figure, save_figure
    from astrounsup.training import is_main_process, train

    cfg = merge_config(TRAIN_DEFAULTS, config, owner="model")
    training_config = copy.deepcopy(cfg["config"] or {})
    if cfg["steps"] is not None:
        training_config.setdefault("training", {})["max_steps"] = cfg["steps"]
    trained = train(
        data, model=cfg["recipe"], config=training_config, out_dir=out, resume=resume,
        device=device, progress=progress, pixel_scale=pixel_scale,
    )  # fmt: skip
    if out is not None and is_main_process():
        from astrounsup.training import LOSS_LABELS

        h = trained.history
        batch = ((trained.config or {}).get("training") or {}).get("batch_size")
        title = (f"{trained.recipe} ({type(trained.model).__name__}, latent dim "
                 f"{trained.latent_dim}): {h.step[-1]} steps"
                 + (f", batch {batch}" if batch else ""))  # fmt: skip
        fig = loss_curve_figure(h.as_dict(), title=title,
                                loss_label=LOSS_LABELS.get(trained.recipe, "loss"))  # fmt: skip
        save_figure(fig, Path(out) / "loss_curve.png", dpi=100)
    return trained


def embed_latents(model, data, *, out=None, batch_size=256, device=None, progress=True):
    """Latent vectors of every cutout of ``data``.

    Parameters
    ----------
    model : astrounsup.training.TrainedModel or path
        A trained model, or its checkpoint.
    data : path, numpy.ndarray or astrounsup.io.CutoutDataset
        In the model's bands.
    out : str or pathlib.Path, optional
        Also write them as a latents file (:func:`astrounsup.latent.write_latents`),
        recording the checkpoint, recipe and cutouts.
    batch_size : int, optional
    device : str, optional
    progress : bool, optional

    Returns
    -------
    latents : numpy.ndarray of shape (n, latent_dim)
    table : astropy.table.QTable
        The cutouts' catalog, one row per latent vector, with a ``noise_floored`` column
        ``(n, bands)``: True where the cutout's border had no measurable noise and the
        band's reference noise normalised it (:meth:`astrounsup.io.CutoutDataset.noise_flags`).
    """
    import os

    from astrounsup.latent import write_latents
    from astrounsup.training import TrainedModel

    trained = model if isinstance(model, TrainedModel) else TrainedModel.load(model)
    dataset = trained.dataset(data)
    latents = trained.embed(dataset, batch_size=batch_size, device=device, progress=progress)
    table = dataset.table.copy()
    table["noise_floored"] = dataset.noise_flags()
    if out is not None:
        meta = {
            "checkpoint": trained.checkpoint,
            "recipe": trained.recipe,
            "store": data if isinstance(data, (str, os.PathLike)) else None,
            "model_class": type(trained.model).__name__,
            "model_fingerprint": trained.fingerprint(),
        }
        write_latents(out, latents, table, meta=meta, step="astrounsup embed")
    return latents, table


def check_latents_model(trained, attrs, *, latents="the latents", checkpoint="the checkpoint"):
    """Refuse a model other than the one that embedded a latents file (new vectors from
    another model do not live in that space).

    Parameters
    ----------
    trained : astrounsup.training.TrainedModel
    attrs : dict
        The latents file's attributes (:func:`astrounsup.latent.read_latents`); a file
        without a ``model_fingerprint`` is checked by its model class only.
    latents, checkpoint : str, optional
        Their names, for the message.

    Raises
    ------
    ValueError
        Naming both files.
    """
    saved = attrs.get("model_fingerprint")
    other = (saved is not None and str(saved) != trained.fingerprint()) or attrs.get(
        "model_class", type(trained.model).__name__
    ) != type(trained.model).__name__
    if other:
        msg = (
            f"{checkpoint} is not the model that embedded {latents} (its weights differ); "
            "give that model's checkpoint, or embed the store with this one"
        )
        raise ValueError(msg)
