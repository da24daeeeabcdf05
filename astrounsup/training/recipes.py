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

import numpy as np

from astrounsup import models, training, transforms
from astrounsup._docparams import parameter_docs

# The command line's help reads MODELS and DEFAULT_MAX_STEPS from here: what loads PyTorch
# (instrument, io, trainer, transforms) is imported by the functions that use it.

__all__ = [
    "DEFAULT_MAX_STEPS",
    "LOSS_LABELS",
    "MODELS",
    "VIEWS",
    "build_model",
    "contrastive_view_settings",
    "default_config",
    "describe_config",
    "load_config",
    "resolve_config",
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

#: Training steps when the config does not say.
DEFAULT_MAX_STEPS = 1000

_SECTIONS = ("model", "training", "normalization")
# Set by train() itself, not by a config.
_MODEL_ARGS_SET = ("bands", "size")
_TRAINER_ARGS_SET = ("model", "objective", "out_dir", "device", "progress", "extra_state")


def _model_class(name):

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


def contrastive_view_settings(
    *, bands, size, pixel_scale, asinh_scale, views="strong", psf_fwhm=None
):
    """The settings of :func:`astrounsup.transforms.contrastive_pipeline` that the SimCLR
    recipe trains with.

    ``views="strong"``: seeing from 1 arcsec (the cutouts carry no per-object seeing into
    training) up to 3 arcsec, or less where the blur kernel would not fit in the view (fine
    pixels, small cutouts), noise up to 4 times the cutout's, reddening for DECam-like
    bands, brightness changed in flux under the stretch of the cutouts.

    ``views="survey"``: calibrated on the survey itself. Seeing from the survey's median
    PSF FWHM (per band) up to the ratio of its 95th to 5th percentile (a view of a cutout
    taken in good seeing may look as if taken in the survey's worst), noise raised to that
    of another cutout of the batch (:class:`astrounsup.transforms.SurveyDepth`), no
    reddening; brightness as above.

    Parameters
    ----------
    bands : sequence of str
    size : int
        Cutout side, px.
    pixel_scale : float
        Arcsec per pixel (finite).
    asinh_scale : sequence of float
        The per-band ``scale_`` of the normaliser that stretched the cutouts.
    views : {"strong", "survey"}, optional
    psf_fwhm : array_like of shape (n,) or (n, bands), optional
        The survey's PSF FWHM per cutout (and band), arcsec; NaN: unknown. Needed by
        ``views="survey"``.

    Returns
    -------
    dict
        Keyword arguments of :func:`astrounsup.transforms.contrastive_pipeline`.

    Raises
    ------
    ValueError
        A pixel scale that is not finite (NaN: unknown), an unknown ``views``, or
        ``views="survey"`` without a known PSF FWHM.
    """
    from astrounsup.instrument import BANDS, kernel_half_width
    from astrounsup.transforms import contrastive_view_size

    if not np.isfinite(pixel_scale):
        msg = (
            "pixel_scale: SimCLR's views blur to a seeing in arcsec, so they need the "
            "cutouts' arcsec per pixel (pixel_scale=, --pixel-scale); got NaN"
        )
        raise ValueError(msg)
    if views not in VIEWS:
        msg = f"views must be one of {list(VIEWS)}; got {views!r}"
        raise ValueError(msg)

    known = all(b in BANDS for b in bands)
    fwhm_in, most, depth, ebv = 1.0, 3.0, (1.0, 4.0), ((0.0, 0.1) if known else None)
    if not known and views != "survey":
        import warnings

        unknown = [b for b in bands if b not in BANDS]
        warnings.warn(
            f"bands {unknown} are not among astrounsup.instrument.BANDS, whose dust "
            "coefficients the views' reddening needs: SimCLR's views are not reddened",
            stacklevel=2,
        )
    if views == "survey":
        fwhm_in, most = _survey_seeing(psf_fwhm, len(bands))
        depth, ebv = "survey", None
    view = contrastive_view_size(size)
    # The largest seeing factor whose blur kernel the view can reflect (see convolve_psf).
    widest = float(np.max(fwhm_in))
    while most > 1.05 and (
        kernel_half_width(widest * math.sqrt(most**2 - 1), pixel_scale, profile="gaussian")
        > view - 1
    ):
        most -= 0.05
    return {
        "size": size,
        "pixel_scale": pixel_scale,
        "bands": tuple(bands),
        "fwhm_in": fwhm_in,
        "seeing_factor": (1.0, round(max(most, 1.0), 2)),
        "depth": depth,
        "ebv": ebv,
        "asinh_scale": asinh_scale,
    }


#: Radius of the core on which :class:`astrounsup.models.ColourResiduals` fits the colour
#: of the central object, and of the search for its centre, arcsec (as
#: :func:`astrounsup.features.lens_light_residuals`).
RESIDUAL_CORE_RADIUS, RESIDUAL_CENTRE_RADIUS = 0.8, 1.2


def _red_band_of(bands):
    """The index of the reddest band for the colour residuals: by name where every band
    is known, else the last."""
    from astrounsup.instrument import reddest_band

    try:
        return reddest_band(bands)
    except ValueError:
        return len(bands) - 1


#: The views SimCLR's recipe can train with (:func:`contrastive_view_settings`).
VIEWS = ("strong", "survey")


def _survey_seeing(psf_fwhm, n_bands):
    """The survey's median FWHM per band (arcsec) and the ratio of its 95th to 5th
    percentile of the per-cutout FWHM (mean over bands)."""
    fwhm = None if psf_fwhm is None else np.asarray(psf_fwhm, dtype=float)
    if fwhm is not None and fwhm.ndim == 1:
        fwhm = np.repeat(fwhm[:, None], n_bands, axis=1)
    usable = (
        fwhm is not None and fwhm.ndim == 2 and fwhm.shape[1] == n_bands
        and np.isfinite(fwhm).any(axis=1).sum() >= 2 and np.nanmin(fwhm) > 0
    )  # fmt: skip
    if not usable:
        msg = (
            "views 'survey' needs each cutout's PSF FWHM (a psf_fwhm column in arcsec, one "
            "per cutout or per cutout and band); the data has none: use views 'strong'"
        )
        raise ValueError(msg)
    with np.errstate(invalid="ignore"):
        median = np.nanmedian(fwhm, axis=0)
        per_cutout = np.nanmean(fwhm, axis=1)
    median = np.where(np.isfinite(median), median, np.nanmedian(per_cutout))
    lo, hi = np.nanpercentile(per_cutout, [5, 95])
    return [float(m) for m in median], float(hi / lo)


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
    psf_fwhm=None,
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
    psf_fwhm : array_like of shape (n,) or (n, bands), optional
        The cutouts' PSF FWHM, arcsec: SimCLR's survey-calibrated views (``views =
        "survey"``) need it (:func:`contrastive_view_settings`).

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
        if cfg.get("colour_residuals") and cfg.get("red_band") is None:
            cfg["red_band"] = _red_band_of(bands)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            model = cls(len(bands), size=input_size, **cfg)
    except TypeError as err:
        msg = f"model {name!r}: bad [model] setting ({err})"
        raise ValueError(msg) from err
    except ValueError as err:
        if name != "simclr" or input_size == size:
            raise
        msg = (
            f"model 'simclr': its views of {size}-px cutouts are {input_size} px (the largest "
            f"crop every rotation fills) and its encoder refuses them ({err}); give larger "
            "cutouts, fewer [model] widths, or a recipe without crops ('cae', 'vae')"
        )
        raise ValueError(msg) from None
    if name == "dae":
        objective = training.denoising_objective(transforms.denoising_pipeline())
    elif name == "simclr":
        settings = contrastive_view_settings(
            bands=bands, size=size, pixel_scale=pixel_scale, asinh_scale=asinh_scale,
            views=model.views, psf_fwhm=psf_fwhm,
        )  # fmt: skip
        objective = training.contrastive_objective(transforms.contrastive_views(**settings))
    elif name == "rotation":
        objective = training.rotation_objective
    elif name == "inpaint":
        objective = training.inpainting_objective
    else:
        objective = training.reconstruction_objective
    _calibrate_inputs(model, asinh_scale=asinh_scale, asinh_softening=asinh_softening,
                     pixel_scale=pixel_scale)  # fmt: skip
    return model, objective, input_size


def _calibrate_inputs(model, *, asinh_scale, asinh_softening, pixel_scale):
    """Set the stretch and the pixel scale of a model's computed input planes (SimCLR's
    ``colour_residuals``, :class:`astrounsup.models.ColourResiduals`) to those of the
    cutouts it is given; nothing for a model without them."""
    inputs = getattr(model, "inputs", None)
    if inputs is None:
        return
    inputs.calibrate(
        scale=[float(v) for v in asinh_scale],
        softening=2.0 if asinh_softening is None else float(asinh_softening),
        core_radius=RESIDUAL_CORE_RADIUS / pixel_scale,
        centre_radius=RESIDUAL_CENTRE_RADIUS / pixel_scale,
    )
