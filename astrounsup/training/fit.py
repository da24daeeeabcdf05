"""Training a recipe on cutouts: the normaliser fitted on them, the model built from the
config, trained (or resumed) and returned as a :class:`astrounsup.training.TrainedModel`."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from astrounsup._atomic import atomic_path
from astrounsup._locks import output_lock
from astrounsup.io import AsinhNormalizer, as_dataset
from astrounsup.training._weights import PRETRAINED, load_shipped
from astrounsup.training.checkpoint import load_checkpoint
from astrounsup.training.fitted import TrainedModel, _with_model_bands
from astrounsup.training.recipes import (
    _calibrate_inputs,
    build_model,
    default_config,
    resolve_config,
)
from astrounsup.training.trainer import Trainer
from astrounsup.transforms import contrastive_view_size

__all__ = ["NORMALIZER_FIT_CUTOUTS", "fit_normalizer", "train"]

#: The most memory :func:`train` holds the normalised cutouts in (larger surveys are read
#: from their source at every step).
TRAINING_MEMORY_BYTES = 2 * 2**30

#: Cutouts (evenly spread over the data) that :func:`fit_normalizer` fits on at most.
NORMALIZER_FIT_CUTOUTS = 512


def fit_normalizer(data, *, settings=None, bands=None, pixel_scale=None, table=None):
    """The :class:`astrounsup.io.AsinhNormalizer` that :func:`train` fits: on up to
    :data:`NORMALIZER_FIT_CUTOUTS` cutouts spread evenly over ``data``.

    Parameters
    ----------
    data : path, numpy.ndarray or astrounsup.io.CutoutDataset
        As :func:`train` takes (a dataset's own normaliser is not used).
    settings : dict, optional
        The normaliser's settings (a config's ``normalization`` section).
    bands, pixel_scale, table : optional
        As :func:`astrounsup.io.as_dataset` takes.

    Returns
    -------
    astrounsup.io.AsinhNormalizer
        Fitted.

    Examples
    --------
    >>> import numpy as np
    >>> images = np.random.default_rng(0).normal(size=(10, 2, 32, 32)).astype("f4")
    >>> fit_normalizer(images, bands=("g", "r")).scale_.shape
    (2,)
    """

    raw = as_dataset(data, bands=bands, pixel_scale=pixel_scale, table=table)
    raw = raw.with_normalizer(None)
    n = len(raw)
    if n == 0:
        msg = "data holds no cutouts"
        raise ValueError(msg)
    rows = np.linspace(0, n - 1, min(NORMALIZER_FIT_CUTOUTS, n)).astype(int).tolist()
    return AsinhNormalizer(**(settings or {})).fit(raw[rows][0])


def train(
    data,
    *,
    model="cae",
    config=None,
    bands=None,
    pixel_scale=None,
    table=None,
    out_dir=None,
    resume=False,
    device=None,
    progress=True,
    normalizer=None,
    objective=None,
    init=None,
):
    """Train recipe ``model`` on cutouts and return the trained model.

    The cutouts are normalised with an :class:`astrounsup.io.AsinhNormalizer` fitted on up
    to 512 of them (evenly spread; :func:`fit_normalizer`); the returned
    :class:`astrounsup.training.TrainedModel` keeps it with the bands, pixel scale and
    recipe, so it embeds any other cutouts the same way.

    Parameters
    ----------
    data : path, numpy.ndarray or astrounsup.io.CutoutDataset
        An HDF5 store, FITS cutouts or a catalog of them, a dataset (its own normaliser is
        not used), or an array ``(n, bands, ny, nx)`` of fluxes.
    model : str, optional
        One of :data:`MODELS`.
    config : dict or path, optional
        A partial config (see :func:`resolve_config`), merged over the recipe's defaults.
    bands, pixel_scale, table : optional
        What an array's planes are, its arcsec per pixel, and a metadata row per cutout
        (see :func:`astrounsup.io.as_dataset`); SimCLR needs a pixel scale, which
        ``pixel_scale`` also gives a store or FITS cutouts that lack one.
    out_dir : str or pathlib.Path, optional
        Where training writes its checkpoints (``last.pt``, resumable) and
        ``history.json``; nothing is written without it.
    resume : bool, optional
        Continue from ``out_dir/last.pt``: refused when there is none, or when it was
        trained on other cutouts, bands or settings (only ``max_steps``,
        ``checkpoint_every``, ``checkpoint_minutes`` and ``patience`` may change).
    device : str, optional
        ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``; default CUDA, then MPS, then CPU.
    progress : bool, optional
        Show a progress bar.
    normalizer : astrounsup.io.AsinhNormalizer, optional
        A fitted normaliser used instead of fitting one (e.g. another survey's, or the one
        an ``objective`` was built for); its bands must be those of the data.
    objective : callable, optional
        ``objective(model, images, masks, generator) -> loss`` replacing the recipe's
        training objective (e.g. SimCLR with other views,
        :func:`astrounsup.training.contrastive_objective`); the model is still the
        recipe's.
    init : {"pretrained"}, path or TrainedModel, optional
        Start from these weights instead of random ones (fine-tuning): ``"pretrained"``,
        the encoder shipped with the package (:func:`astrounsup.training.load_pretrained`),
        a checkpoint, or a trained model. It must be of recipe ``model``, with bands the
        data holds (cutouts with more bands give its bands' planes, in its order) and the
        same input size, at a pixel scale it was
        trained on (within 10%, or the shipped encoder's range); its model settings are
        used (a ``[model]`` setting that differs is refused). The normaliser is fitted on
        ``data`` as without it. ``max_steps = 0`` returns it with that normaliser,
        untrained.

    Returns
    -------
    TrainedModel

    Raises
    ------
    ValueError
        A bad config key or value, bands or shapes the recipe cannot take, or a bad
        device, before any training.

    Examples
    --------
    >>> import numpy as np
    >>> images = np.random.default_rng(0).normal(size=(40, 2, 32, 32)).astype("f4")
    >>> fitted = train(images, model="cae", bands=("g", "r"), progress=False,
    ...                config={"model": {"latent_dim": 4, "widths": [4, 8]},
    ...                        "training": {"max_steps": 2, "batch_size": 8}})
    >>> fitted.embed(images, progress=False).shape
    (40, 4)
    """
    import contextlib

    base = None if init is None else _initial_model(init)
    steps_zero = (
        base is not None and isinstance(config, dict)
        and (config.get("training") or {}).get("max_steps") == 0
    )  # fmt: skip
    if steps_zero:  # no training: checked as a run of one step would be
        config = {**config, "training": {**config["training"], "max_steps": 1}}
    cfg = resolve_config(config, model=model)
    if base is not None:
        cfg["model"] = _init_model_config(base, model, cfg["model"])
    if objective is not None and not callable(objective):
        msg = f"objective must be callable (model, images, masks, generator); got {objective!r}"
        raise ValueError(msg)
    raw = as_dataset(data, bands=bands, pixel_scale=pixel_scale, table=table)
    raw = raw.with_normalizer(None)
    if base is not None:  # cutouts with more bands than the initial model's: its planes
        raw = _with_model_bands(raw, base.bands)
    n, _, _, size = raw.shape
    if n == 0:
        msg = "data holds no cutouts"
        raise ValueError(msg)
    if normalizer is None:
        norm = fit_normalizer(raw, settings=cfg["normalization"])
    elif not isinstance(normalizer, AsinhNormalizer) or not hasattr(normalizer, "scale_"):
        msg = f"normalizer must be a fitted AsinhNormalizer; got {normalizer!r}"
        raise ValueError(msg)
    elif len(normalizer.scale_) != raw.shape[1]:
        msg = (
            f"normalizer was fitted on {len(normalizer.scale_)} bands; the data has "
            f"{raw.shape[1]} ({', '.join(raw.bands)})"
        )
        raise ValueError(msg)
    else:
        norm = normalizer
    dataset = raw.with_normalizer(norm)
    if base is not None:
        _check_init(base, dataset, model)
    net, recipe_objective, input_size = build_model(
        model,
        bands=dataset.bands,
        size=size,
        pixel_scale=dataset.pixel_scale,
        model_config=cfg["model"],
        seed=cfg["training"]["seed"],
        asinh_scale=norm.scale_,
        asinh_softening=norm.softening,
        psf_fwhm=_psf_fwhm(dataset),
    )
    if base is not None:
        net.load_state_dict(base.model.state_dict())
        # Computed input planes follow this data's stretch, not the initial model's.
        _calibrate_inputs(net, asinh_scale=norm.scale_, asinh_softening=norm.softening,
                         pixel_scale=dataset.pixel_scale)  # fmt: skip
    out = None if out_dir is None else Path(out_dir)
    trained = TrainedModel(
        net,
        recipe=model,
        bands=dataset.bands,
        pixel_scale=dataset.pixel_scale,
        input_size=input_size,
        normalizer=norm,
        config=cfg,
        source=str(data) if isinstance(data, (str, os.PathLike)) else None,
        checkpoint=None if out is None else out / "last.pt",
        init=None if base is None else _init_name(init, base),
    )
    if steps_zero:
        cfg["training"]["max_steps"] = 0
        trained.model = net.eval()
        if out is not None:
            with output_lock(out):
                trained.save(out / "last.pt")
        return trained
    try:
        trainer = Trainer(
            net,
            objective=recipe_objective if objective is None else objective,
            out_dir=out_dir,
            device=device,
            progress=progress,
            extra_state=trained.extra_state(),
            **cfg["training"],
        )
    except TypeError as err:
        msg = f"bad [training] setting ({err})"
        raise ValueError(msg) from err
    # One training writes a run folder at a time (process 0 writes for all of them).
    lock = output_lock(out) if out is not None and trainer.rank == 0 else contextlib.nullcontext()
    with lock:
        if resume and out is not None:
            _check_resumable(out / "last.pt", trained.extra_state())
            trainer.resume(out / "last.pt")
        # Many epochs over the same cutouts: read and normalise each once (when they fit).
        trainer.fit(dataset.in_memory(max_bytes=TRAINING_MEMORY_BYTES))
        if out is not None and trainer.rank == 0:
            import json

            with atomic_path(out / "history.json") as tmp:
                tmp.write_text(json.dumps(trainer.history.as_dict()))
    trained.model, trained.history = trainer.model.eval(), trainer.history
    return trained


def _psf_fwhm(dataset):
    """The dataset's ``psf_fwhm`` column as floats (arcsec), or None without one."""
    table = getattr(dataset, "table", None)
    if table is None or "psf_fwhm" not in table.colnames:
        return None
    column = table["psf_fwhm"]
    return np.asarray(getattr(column, "value", column), dtype=float)


def _initial_model(init):
    """The :class:`TrainedModel` that ``init`` names."""
    if isinstance(init, TrainedModel):
        return init
    if isinstance(init, str) and init == "pretrained":
        return load_shipped(PRETRAINED)
    if isinstance(init, (str, os.PathLike)):
        return TrainedModel.load(init)
    msg = f"init must be 'pretrained', a checkpoint path or a TrainedModel; got {init!r}"
    raise ValueError(msg)


def _init_name(init, base):
    """How a run's initial weights are named in its checkpoint and report."""
    card = getattr(base, "card", None)
    if card is not None:
        return f"pretrained {card['name']} ({card['steps']} steps)"
    return str(base.checkpoint) if base.checkpoint is not None else "a trained model"


def _init_model_config(base, recipe, resolved):
    """The model settings of ``base``; a ``[model]`` setting of the config (one that is not
    the recipe's default) that differs from them is refused."""
    if base.recipe != recipe:
        msg = f"init: {_name(base)} is a {base.recipe!r} model, not {recipe!r}"
        raise ValueError(msg)
    saved = {k: v for k, v in dict(base.model.config).items() if k not in ("bands", "size")}
    defaults = default_config(recipe)["model"]
    given = {k: v for k, v in resolved.items() if not _same(_plain(v), _plain(defaults.get(k)))}
    for key, value in given.items():
        if key in saved and not _same(_plain(value), _plain(saved[key])):
            msg = (
                f"init: {_name(base)} has [model] {key} = {_plain(saved[key])!r}; the config "
                f"sets {_plain(value)!r} (leave it out, or train from scratch without init)"
            )
            raise ValueError(msg)
    return resolved | saved


def _check_init(base, dataset, recipe):
    """Refuse initial weights for other bands, another input size or pixel scale."""
    name = _name(base)
    if tuple(base.bands) != tuple(dataset.bands):
        msg = (
            f"init: {name} takes bands {list(base.bands)}; the data has "
            f"{list(dataset.bands)} (give cutouts in those bands, in that order, or train "
            "without init)"
        )
        raise ValueError(msg)
    size = dataset.shape[-1]
    if recipe == "simclr":
        size = contrastive_view_size(size)
    if size != base.input_size:
        msg = (
            f"init: {name} takes an input of {base.input_size} px; cutouts of "
            f"{dataset.shape[-1]} px give {size} (cut or pad them, or train without init)"
        )
        raise ValueError(msg)
    lo, hi = getattr(base, "pixel_scale_range", None) or (
        base.pixel_scale / 1.1, base.pixel_scale * 1.1)  # fmt: skip
    if not math.isfinite(lo):  # trained without a pixel scale: nothing to compare
        return
    scale = dataset.pixel_scale
    if not (math.isfinite(scale) and lo <= scale <= hi):
        msg = (
            f"init: {name} was trained on {lo:.3g}-{hi:.3g} arcsec/px; the data has "
            f"{scale:.3g} (train without init, or resample the cutouts)"
        )
        raise ValueError(msg)


def _name(base):
    card = getattr(base, "card", None)
    if card is not None:
        return f"the shipped encoder {card['name']}"
    return str(base.checkpoint) if base.checkpoint is not None else "the initial model"


#: Training settings a resumed run may change: how long it runs and how often it saves.
_RESUMABLE_CHANGES = ("max_steps", "checkpoint_every", "checkpoint_minutes", "patience")


def _check_resumable(path, extra):
    """Refuse to resume from ``path`` without a checkpoint there, or with other cutouts
    (the normalisation fitted on them differs), bands or settings than the run it
    continues."""

    if not path.exists():
        msg = f"{path}: no checkpoint to resume from; run without resume to start a new run"
        raise FileNotFoundError(msg)
    state = load_checkpoint(path)
    if "optimizer" not in state:  # Trainer.resume says why it cannot go on from this one
        return
    saved = state.get("extra", {})
    # Other pixels show as another normalisation (fitted on the cutouts); a store's path
    # alone says little (the same file named from another folder, or rewritten).
    for key in ("recipe", "bands", "input_size", "pixel_scale", "normalization"):
        a, b = _plain(saved.get(key)), _plain(extra.get(key))
        if not _same(a, b):
            if key == "normalization":
                what = "cutouts"
                a, b = (np.round((d or {}).get("scale") or [], 4).tolist() for d in (a, b))
                key = "normalisation scale"
            else:
                what = key
            msg = (
                f"{path}: was trained on other {what} ({key} {a!r}, now {b!r}); resume with "
                "the same data and config, or start a new run"
            )
            raise ValueError(msg)
    old, new = saved.get("config") or {}, extra.get("config") or {}
    for section in sorted(set(old) | set(new)):
        a, b = old.get(section) or {}, new.get(section) or {}
        for key in sorted(set(a) | set(b)):
            if section == "training" and key in _RESUMABLE_CHANGES:
                continue
            if not _same(_plain(a.get(key)), _plain(b.get(key))):
                msg = (
                    f"{path}: was trained with [{section}] {key} = {_plain(a.get(key))!r}, "
                    f"now {_plain(b.get(key))!r}; resume with the same config, or start a new run"
                )
                raise ValueError(msg)


def _same(a, b):
    """Equal, NaN equal to NaN."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


def _plain(value):
    """``value`` with tuples as lists and numpy scalars as Python numbers, for comparing."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()
    return value
