"""Named training recipes: a model, its objective and every setting's default, from a config.

A training config has three sections, each optional and each merged over its defaults:

``model``
    Keyword arguments of the recipe's model class (``latent_dim``, ``widths``, ...).
``training``
    Keyword arguments of :class:`astrounsup.training.Trainer` (``max_steps``, ``lr``, ...).
``normalization``
    Keyword arguments of :class:`astrounsup.io.AsinhNormalizer`.

:func:`default_config` gives every key with its default, :func:`describe_config` every key
with its default and meaning (from the docstrings of the classes that take them), and
:func:`resolve_config` merges a partial config over the defaults and refuses unknown keys by
name.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import math
import os
import re
import tomllib
from pathlib import Path

import numpy as np

__all__ = [
    "DEFAULT_MAX_STEPS",
    "LOSS_LABELS",
    "MODELS",
    "NORMALIZER_FIT_CUTOUTS",
    "build_model",
    "contrastive_view_settings",
    "default_config",
    "describe_config",
    "fit_normalizer",
    "load_config",
    "resolve_config",
    "train",
]

#: Model names of ``astrounsup train --model`` and the settings each recipe changes from its
#: class's defaults (every other default is the class's own).
MODELS = {
    "cae": {},
    "dae": {},
    "sae": {"sparsity": "l1"},
    "cae-contractive": {"contractive_weight": 1e-4},
    "vae": {},
    "simclr": {},
    "rotation": {},
    "inpaint": {},
}

#: What each recipe's training loss is, with its unit (the loss-curve axis label).
LOSS_LABELS = {
    "cae": "mean squared error [normalised flux$^2$ per pixel]",
    "dae": "mean squared error of the clean cutout [normalised flux$^2$ per pixel]",
    "sae": "mean squared error + sparsity penalty [normalised flux$^2$ per pixel]",
    "cae-contractive": "mean squared error + contractive penalty [normalised flux$^2$ per pixel]",
    "vae": "negative ELBO [nats per unmasked pixel]",
    "simclr": "NT-Xent contrastive loss [nats per view]",
    "rotation": "cross-entropy of the rotation [nats per cutout]",
    "inpaint": "mean squared error in the holes [normalised flux$^2$ per pixel]",
}

#: The most memory :func:`train` holds the normalised cutouts in (larger surveys are read
#: from their source at every step).
TRAINING_MEMORY_BYTES = 2 * 2**30

#: Training steps when the config does not say.
DEFAULT_MAX_STEPS = 1000

_SECTIONS = ("model", "training", "normalization")
# Set by train() itself, not by a config.
_MODEL_ARGS_SET = ("bands", "size")
_TRAINER_ARGS_SET = ("model", "objective", "out_dir", "device", "progress", "extra_state")


def _model_class(name):
    from astrounsup import models

    _check_recipe(name)
    classes = {
        "vae": models.VAE,
        "simclr": models.SimCLR,
        "rotation": models.RotationPretext,
        "inpaint": models.ContextEncoder,
    }
    return classes.get(name, models.ConvAutoencoder)


def _check_recipe(name):
    """Raise a ValueError unless ``name`` is one of :data:`MODELS`."""
    if name not in MODELS:
        msg = f"model must be one of {sorted(MODELS)}; got {name!r}"
        raise ValueError(msg)


def _keyword_defaults(callable_, skip):
    out = {}
    for p in inspect.signature(callable_).parameters.values():
        if p.name in skip or p.kind not in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD):
            continue
        default = None if p.default is inspect.Parameter.empty else p.default
        out[p.name] = list(default) if isinstance(default, tuple) else default
    return out


def _setting_owners(model):
    from astrounsup.io import AsinhNormalizer
    from astrounsup.training.trainer import Trainer

    return {"model": _model_class(model), "training": Trainer, "normalization": AsinhNormalizer}


def default_config(model="cae"):
    """Every setting of recipe ``model`` with its default value.

    Parameters
    ----------
    model : str, optional
        One of :data:`MODELS`.

    Returns
    -------
    dict
        ``{"model": {...}, "training": {...}, "normalization": {...}}``, a new copy.

    Examples
    --------
    >>> cfg = default_config("simclr")
    >>> cfg["model"]["latent_dim"], cfg["training"]["max_steps"], cfg["normalization"]["softening"]
    (64, 1000, 2.0)
    """
    owners = _setting_owners(model)
    model_defaults = _keyword_defaults(owners["model"], _MODEL_ARGS_SET)
    model_defaults.update(copy.deepcopy(MODELS[model]))
    training = _keyword_defaults(owners["training"], _TRAINER_ARGS_SET)
    training["max_steps"] = DEFAULT_MAX_STEPS
    return {
        "model": model_defaults,
        "training": training,
        "normalization": _keyword_defaults(owners["normalization"], ()),
    }


_SAME_AS = re.compile(r"^As :class:`~?(astrounsup\.[\w.]+)`\.?$")


def _meaning(owner, key):
    """The description of parameter ``key`` in ``owner``'s docstring, following "As
    :class:`...`" to the class named."""
    from astrounsup._docparams import parameter_docs

    _kind, text = parameter_docs(owner).get(key, ("", ""))
    same = _SAME_AS.match(text)
    if same:
        module, _, name = same.group(1).rpartition(".")
        return _meaning(getattr(importlib.import_module(module), name), key)
    return text


def describe_config(model="cae"):
    """Every setting of recipe ``model``: its section, key, default and meaning.

    The meanings are the parameter descriptions of the classes that take the settings
    (the recipe's model class, :class:`astrounsup.training.Trainer` and
    :class:`astrounsup.io.AsinhNormalizer`), the defaults those of :func:`default_config`.

    Parameters
    ----------
    model : str, optional
        One of :data:`MODELS`.

    Returns
    -------
    list of tuple
        ``(section, key, default, meaning)`` per setting, in the order of
        :func:`default_config`; ``default`` is the Python value (``None``: not set).

    Examples
    --------
    >>> rows = describe_config("vae")
    >>> [row[:3] for row in rows if row[1] in ("beta", "lr")]
    [('model', 'beta', 1.0), ('training', 'lr', 0.001)]
    >>> all(meaning for *_, meaning in rows)
    True
    """
    owners = _setting_owners(model)
    return [
        (section, key, default, _meaning(owners[section], key))
        for section, values in default_config(model).items()
        for key, default in values.items()
    ]


def load_config(path):
    """A (partial) training config from a TOML file with ``[model]``, ``[training]`` and
    ``[normalization]`` tables, each optional; ``None`` gives an empty config.

    Raises
    ------
    ValueError
        For an unknown section or a file that is not TOML (naming the file).
    """
    if path is None:
        return {}
    try:
        with open(path, "rb") as f:
            loaded = tomllib.load(f)
    except tomllib.TOMLDecodeError as err:
        msg = f"{path}: not a TOML file ({err})"
        raise ValueError(msg) from err
    unknown = sorted(set(loaded) - set(_SECTIONS))
    if unknown:
        msg = f"{path}: unknown config sections {unknown}; allowed: {list(_SECTIONS)}"
        raise ValueError(msg)
    return loaded


def resolve_config(config=None, *, model="cae"):
    """A partial training config merged over :func:`default_config`.

    Parameters
    ----------
    config : dict, str, pathlib.Path or None, optional
        ``{"training": {"max_steps": 200}}`` and the like, or a TOML file of such sections.
    model : str, optional
        The recipe whose defaults are filled in.

    Returns
    -------
    dict
        Every section and key, the given values replacing the defaults.

    Raises
    ------
    ValueError
        For an unknown section or key (naming it and the allowed ones), a section that
        is not a table, or a training setting of the wrong type or range
        (:func:`astrounsup.training.check_training_settings`).

    Examples
    --------
    >>> cfg = resolve_config({"training": {"max_steps": 50}}, model="vae")
    >>> cfg["training"]["max_steps"], cfg["training"]["lr"], cfg["model"]["beta"]
    (50, 0.001, 1.0)
    >>> resolve_config({"training": {"steps": 50}})
    Traceback (most recent call last):
    ...
    ValueError: config['training']: unknown key 'steps'; allowed: ['amp', 'batch_size', ...]
    """
    if isinstance(config, (str, os.PathLike)):
        path = config
        try:
            return resolve_config(load_config(path), model=model)
        except ValueError as err:
            if str(err).startswith(str(path)):
                raise
            msg = f"{path}: {err}"
            raise ValueError(msg) from None
    config = {} if config is None else config
    if not isinstance(config, dict):
        msg = f"config must be a dict of sections {list(_SECTIONS)} or a TOML path; got {config!r}"
        raise ValueError(msg)
    out = default_config(model)
    unknown = sorted(set(config) - set(_SECTIONS))
    if unknown:
        msg = f"config: unknown sections {unknown}; allowed: {list(_SECTIONS)}"
        raise ValueError(msg)
    for section, values in config.items():
        if not isinstance(values, dict):
            msg = f"config[{section!r}] must be a table of settings; got {values!r}"
            raise ValueError(msg)
        allowed = sorted(out[section])
        for key, value in values.items():
            if key not in out[section]:
                owner = f" for model {model!r}" if section == "model" else ""
                msg = f"config[{section!r}]: unknown key {key!r}{owner}; allowed: {allowed}"
                raise ValueError(msg)
            out[section][key] = copy.deepcopy(value)
    from astrounsup.training.trainer import check_training_settings

    try:
        check_training_settings(**out["training"])
    except ValueError as err:
        msg = f"config['training']: {err}"
        raise ValueError(msg) from None
    return out


#: Training settings a resumed run may change: how long it runs and how often it saves.
_RESUMABLE_CHANGES = ("max_steps", "checkpoint_every", "checkpoint_minutes", "patience")


def _check_resumable(path, extra):
    """Refuse to resume from ``path`` without a checkpoint there, or with other cutouts
    (the normalisation fitted on them differs), bands or settings than the run it
    continues."""
    from astrounsup.training.checkpoint import load_checkpoint

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


def contrastive_view_settings(*, bands, size, pixel_scale, asinh_scale):
    """The settings of :func:`astrounsup.transforms.contrastive_pipeline` that the SimCLR
    recipe trains with: seeing from 1 arcsec (the cutouts carry no per-object seeing into
    training) up to 3 arcsec, or less where the blur kernel would not fit in the view (fine
    pixels, small cutouts), reddening for DECam-like bands, brightness changed in flux under
    the stretch of the cutouts.

    Parameters
    ----------
    bands : sequence of str
    size : int
        Cutout side, px.
    pixel_scale : float
        Arcsec per pixel (finite).
    asinh_scale : sequence of float
        The per-band ``scale_`` of the normaliser that stretched the cutouts.

    Returns
    -------
    dict
        Keyword arguments of :func:`astrounsup.transforms.contrastive_pipeline`.

    Raises
    ------
    ValueError
        A pixel scale that is not finite (NaN: unknown).
    """
    from astrounsup.instrument import BANDS

    if not np.isfinite(pixel_scale):
        msg = (
            "pixel_scale: SimCLR's views blur to a seeing in arcsec, so they need the "
            "cutouts' arcsec per pixel (pixel_scale=, --pixel-scale); got NaN"
        )
        raise ValueError(msg)
    from astrounsup.instrument import kernel_half_width
    from astrounsup.transforms import contrastive_view_size

    known = all(b in BANDS for b in bands)
    fwhm_in, view = 1.0, contrastive_view_size(size)
    worst = 3.0
    # The largest seeing factor whose blur kernel the view can reflect (see convolve_psf).
    while worst > 1.05 and (
        kernel_half_width(fwhm_in * math.sqrt(worst**2 - 1), pixel_scale, profile="gaussian")
        > view - 1
    ):
        worst -= 0.05
    return {
        "size": size,
        "pixel_scale": pixel_scale,
        "bands": tuple(bands),
        "fwhm_in": fwhm_in,
        "seeing_factor": (1.0, round(worst, 2)),
        "ebv": (0.0, 0.1) if known else None,
        "asinh_scale": asinh_scale,
    }


def build_model(
    name,
    *,
    bands,
    size,
    pixel_scale,
    model_config=None,
    seed=0,
    asinh_scale=None,
    asinh_softening=None,
):
    """The model and objective of recipe ``name`` for cutouts of ``bands x size x size``.

    Parameters
    ----------
    name : str
        One of :data:`MODELS`.
    bands : sequence of str
        Band names (reddening in SimCLR's views uses them when they are DECam bands).
    size : int
        Cutout side, px.
    pixel_scale : float
        Arcsec per pixel.
    model_config : dict, optional
        Overrides of the model's keyword arguments.
    seed : int, optional
        Seeds the initial weights (drawn with torch's CPU generator forked for the purpose,
        so the global random state is neither read nor changed): the same seed gives the
        same model whatever ran before. :func:`train` passes the run's training seed.
    asinh_scale : sequence of float, optional
        The per-band ``scale_`` of the :class:`astrounsup.io.AsinhNormalizer` the cutouts
        are stretched with. Required by ``"simclr"``, whose views change each object's
        brightness in flux (:class:`astrounsup.transforms.Brightness`); :func:`train` fits
        the normaliser first and passes it.
    asinh_softening : float, optional
        That normaliser's ``softening``. With ``asinh_scale``, the ``"vae"`` recipe's
        likelihood and the ``"inpaint"`` recipe's loss are in units of each pixel's sky
        noise (``noise_softening`` and ``noise_scale`` of :class:`astrounsup.models.VAE`
        and :class:`astrounsup.models.ContextEncoder`) unless the config learns the
        variance or sets them.

    Returns
    -------
    model : torch.nn.Module
    objective : callable
    input_size : int
        Side of the cutouts the encoder takes (SimCLR sees centre-cropped views).

    Raises
    ------
    ValueError
        Unknown name, ``"simclr"`` without ``asinh_scale``, or a configuration the model
        refuses (before any training).
    """
    import torch

    from astrounsup import training, transforms

    cls = _model_class(name)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        msg = f"seed must be an integer; got {seed!r}"
        raise ValueError(msg)
    if name == "simclr" and asinh_scale is None:
        msg = (
            "build_model('simclr') needs asinh_scale, the per-band scale_ of the "
            "AsinhNormalizer that stretches the cutouts (its views change brightness in "
            "flux); got None"
        )
        raise ValueError(msg)
    cfg = MODELS[name] | dict(model_config or {})
    if (
        name in ("vae", "inpaint")
        and asinh_scale is not None
        and asinh_softening is not None
        and not cfg.get("learn_variance")
        and cfg.get("noise_scale") is None
        and cfg.get("noise_softening") is None
    ):
        cfg |= {"noise_softening": float(asinh_softening),
                "noise_scale": [float(v) for v in asinh_scale]}  # fmt: skip
    input_size = size
    if name == "simclr":
        input_size = transforms.contrastive_view_size(size)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            model = cls(len(bands), size=input_size, **cfg)
    except TypeError as err:
        msg = f"model {name!r}: bad [model] setting ({err})"
        raise ValueError(msg) from err
    if name == "dae":
        objective = training.denoising_objective(transforms.denoising_pipeline())
    elif name == "simclr":
        settings = contrastive_view_settings(
            bands=bands, size=size, pixel_scale=pixel_scale, asinh_scale=asinh_scale
        )
        objective = training.contrastive_objective(transforms.contrastive_views(**settings))
    elif name == "rotation":
        objective = training.rotation_objective
    elif name == "inpaint":
        objective = training.inpainting_objective
    else:
        objective = training.reconstruction_objective
    return model, objective, input_size


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
    from astrounsup.io import AsinhNormalizer, as_dataset

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

    from astrounsup._atomic import atomic_path
    from astrounsup._locks import output_lock
    from astrounsup.io import AsinhNormalizer, as_dataset
    from astrounsup.training.fitted import TrainedModel
    from astrounsup.training.trainer import Trainer

    cfg = resolve_config(config, model=model)
    if objective is not None and not callable(objective):
        msg = f"objective must be callable (model, images, masks, generator); got {objective!r}"
        raise ValueError(msg)
    raw = as_dataset(data, bands=bands, pixel_scale=pixel_scale, table=table)
    raw = raw.with_normalizer(None)
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
    net, recipe_objective, input_size = build_model(
        model,
        bands=dataset.bands,
        size=size,
        pixel_scale=dataset.pixel_scale,
        model_config=cfg["model"],
        seed=cfg["training"]["seed"],
        asinh_scale=norm.scale_,
        asinh_softening=norm.softening,
    )
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
    )
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
