"""Named training recipes: a model, its objective and its defaults, from a config."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np

__all__ = ["MODELS", "build_model", "load_config", "load_model", "train_store"]

#: Model names of ``astrounsup train --model`` and the defaults each adds.
MODELS = {
    "cae": {},
    "dae": {},
    "sae": {"sparsity": "l1", "sparsity_weight": 1e-3},
    "cae-contractive": {"contractive_weight": 1e-4},
    "vae": {"beta": 1.0},
    "simclr": {"latent_dim": 64, "projection_dim": 64, "temperature": 0.2},
    "rotation": {"latent_dim": 64},
}

_SECTIONS = ("model", "training", "normalization")


def load_config(path=None):
    """A training config ``{"model": {...}, "training": {...}, "normalization": {...}}``
    from a TOML file (every section optional); ``None`` gives empty sections.

    Raises
    ------
    ValueError
        For an unknown section (naming the file and the allowed sections).
    """
    config = {s: {} for s in _SECTIONS}
    if path is None:
        return config
    with open(path, "rb") as f:
        loaded = tomllib.load(f)
    unknown = sorted(set(loaded) - set(_SECTIONS))
    if unknown:
        msg = f"{path}: unknown config sections {unknown}; allowed: {list(_SECTIONS)}"
        raise ValueError(msg)
    for s in _SECTIONS:
        config[s].update(loaded.get(s, {}))
    return config


def build_model(name, *, bands, size, pixel_scale, model_config=None, seed=0, asinh_scale=None):
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
        same model whatever ran before. ``train_store`` passes the run's training seed.
    asinh_scale : sequence of float, optional
        The per-band ``scale_`` of the :class:`astrounsup.io.AsinhNormalizer` the cutouts
        are stretched with. Required by ``"simclr"``, whose views change each object's
        brightness in flux (:class:`astrounsup.transforms.Brightness`); ``train_store``
        fits the normaliser first and passes it.

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

    from astrounsup import models, training, transforms
    from astrounsup.instrument import BANDS

    if name not in MODELS:
        msg = f"model must be one of {sorted(MODELS)}; got {name!r}"
        raise ValueError(msg)
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
    input_size = size
    if name == "simclr":
        input_size = transforms.contrastive_view_size(size)
    classes = {"vae": models.VAE, "simclr": models.SimCLR, "rotation": models.RotationPretext}
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            model = classes.get(name, models.ConvAutoencoder)(len(bands), size=input_size, **cfg)
    except TypeError as err:
        msg = f"model {name!r}: bad [model] setting ({err})"
        raise ValueError(msg) from err
    if name == "dae":
        objective = training.denoising_objective(transforms.denoising_pipeline())
    elif name == "simclr":
        known = all(b in BANDS for b in bands)
        views = transforms.contrastive_views(
            size=size,
            pixel_scale=pixel_scale,
            bands=bands,
            fwhm_in=1.0,
            ebv=(0.0, 0.1) if known else None,
            asinh_scale=asinh_scale,
        )
        objective = training.contrastive_objective(views)
    elif name == "rotation":
        objective = training.rotation_objective
    else:
        objective = training.reconstruction_objective
    return model, objective, input_size


def train_store(
    store, out, *, model="cae", config=None, resume=False, device=None, progress=False
):
    """Train recipe ``model`` on an HDF5 store; write ``last.pt``, ``history.json`` and
    ``loss_curve.png`` into ``out``.

    The cutouts are normalised with an :class:`astrounsup.io.AsinhNormalizer` fitted on up
    to 512 of them; its parameters, the band names, the pixel scale and the recipe go into
    the checkpoint, so ``embed`` treats any other store the same way.

    Returns
    -------
    astrounsup.training.Trainer
    """
    from astrounsup.io import AsinhNormalizer, CutoutDataset
    from astrounsup.training import Trainer

    config = config or load_config()
    out = Path(out)
    data = CutoutDataset(store)
    size = data._source.shape[-1]
    rows = np.linspace(0, len(data) - 1, min(512, len(data))).astype(int).tolist()
    norm = AsinhNormalizer(**config["normalization"]).fit(data[rows][0])
    data.normalizer = norm
    net, objective, input_size = build_model(
        model,
        bands=data.bands,
        size=size,
        pixel_scale=data.pixel_scale,
        model_config=config["model"],
        seed=config["training"].get("seed", 0),
        asinh_scale=norm.scale_,
    )
    extra = {
        "recipe": model,
        "bands": list(data.bands),
        "pixel_scale": float(data.pixel_scale),
        "input_size": int(input_size),
        "normalization": norm.to_dict(),
        "store": str(store),
    }
    try:
        trainer = Trainer(
            net,
            objective=objective,
            out_dir=out,
            device=device,
            progress=progress,
            extra_state=extra,
            **config["training"],
        )
    except TypeError as err:
        msg = f"bad [training] setting ({err})"
        raise ValueError(msg) from err
    if resume and (out / "last.pt").exists():
        trainer.resume(out / "last.pt")
    trainer.fit(data)
    if trainer.rank == 0:
        _write_history(out, trainer.history)
    return trainer


def _write_history(out, history):
    from astrounsup._atomic import atomic_path
    from astrounsup.plotting import loss_curve_figure, save_figure

    with atomic_path(out / "history.json") as tmp:
        tmp.write_text(json.dumps(history.as_dict()))
    save_figure(loss_curve_figure(history.as_dict()), out / "loss_curve.png", dpi=100)


def load_model(checkpoint):
    """Rebuild a trained model (in eval mode) and its checkpoint's extra state.

    Returns
    -------
    model : torch.nn.Module
    extra : dict
        ``recipe``, ``bands``, ``pixel_scale``, ``input_size``, ``normalization``, ...

    Raises
    ------
    ValueError
        Not an astrounsup checkpoint, an unknown model class, or weights that do not fit
        the model its config describes (e.g. written by a version with another decoder);
        the message names the file.
    """
    from astrounsup import models
    from astrounsup.training import load_checkpoint
    from astrounsup.training.checkpoint import _load_weights

    state = load_checkpoint(checkpoint)
    classes = {
        c.__name__: c
        for c in (models.ConvAutoencoder, models.VAE, models.SimCLR, models.RotationPretext)
    }
    cls = classes.get(state["model_class"])
    if cls is None:
        msg = f"{checkpoint}: unknown model class {state['model_class']!r}"
        raise ValueError(msg)
    cfg = dict(state["model_config"])
    model = cls(cfg.pop("bands"), **cfg)
    _load_weights(model, state, checkpoint)
    return model.eval(), dict(state["extra"])
