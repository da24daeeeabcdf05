"""Pretraining an encoder on a sequence of built-in surveys made on the fly."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np

from astrounsup._atomic import atomic_path
from astrounsup._config import merge_config
from astrounsup._locks import output_lock
from astrounsup.simulate import simulate_lens_survey
from astrounsup.training import TrainedModel, train

__all__ = ["PRETRAIN_DEFAULTS", "pretrain_encoder", "pretrain_survey_settings"]

#: Settings of :func:`pretrain_encoder` (the ``[pretrain]`` table of
#: ``pipelines/configs/pretrain.toml``): surveys (``chunks``) of ``n`` cutouts, ``steps``
#: SimCLR steps on each, survey ``i`` made from ``(seed, i)`` with a pixel scale drawn
#: uniformly from ``pixel_scale`` (arcsec/px) and a lens fraction drawn log-uniformly from
#: ``lens_fraction``.
PRETRAIN_DEFAULTS = {
    "chunks": 40,
    "n": 4000,
    "steps": 600,
    "seed": 20261206,
    "bands": ["g", "r", "i"],
    "size": 64,
    "pixel_scale": [0.168, 0.30],
    "lens_fraction": [0.01, 0.5],
    "anomaly_fraction": 0.01,
    "nan_fraction": 0.02,
}


def pretrain_survey_settings(config, index):
    """The :func:`astrounsup.simulate.simulate_lens_survey` settings of survey ``index``.

    Parameters
    ----------
    config : dict
        Over :data:`PRETRAIN_DEFAULTS`.
    index : int
        >= 0.

    Returns
    -------
    dict
        ``n``, ``seed``, ``bands``, ``size``, ``pixel_scale``, ``lens_fraction``,
        ``anomaly_fraction`` and ``nan_fraction``.

    Examples
    --------
    >>> s = pretrain_survey_settings({}, 0)
    >>> 0.168 <= s["pixel_scale"] <= 0.30, 0.01 <= s["lens_fraction"] <= 0.5
    (True, True)
    """
    cfg = merge_config(PRETRAIN_DEFAULTS, config, owner="pretrain")
    rng = np.random.default_rng(np.random.SeedSequence([int(cfg["seed"]), int(index)]))
    lo, hi = cfg["pixel_scale"]
    scale = float(rng.uniform(lo, hi))
    flo, fhi = cfg["lens_fraction"]
    fraction = float(math.exp(rng.uniform(math.log(flo), math.log(fhi))))
    return {
        "n": int(cfg["n"]),
        "seed": int(rng.integers(2**31)),
        "bands": list(cfg["bands"]),
        "size": int(cfg["size"]),
        "pixel_scale": round(scale, 4),
        "lens_fraction": round(fraction, 4),
        "anomaly_fraction": float(cfg["anomaly_fraction"]),
        "nan_fraction": float(cfg["nan_fraction"]),
    }


def pretrain_encoder(config, out, *, model=None, chunks=None, init=None, progress=True,
                     device=None):  # fmt: skip
    """Train SimCLR on one built-in survey after another, each made in memory.

    Survey ``i`` (:func:`pretrain_survey_settings`) trains, with
    :func:`astrounsup.training.train` and ``init`` = the encoder the previous survey left,
    ``steps`` steps (the learning rate warms up and decays again on each). After each
    survey ``out/encoder.pt`` (:meth:`astrounsup.training.TrainedModel.save`) and
    ``out/progress.json`` (the settings, and per survey its settings, seconds and last
    loss) are written atomically; a later call with the same settings goes on from the
    next survey (an interrupted survey is made and trained again).

    Parameters
    ----------
    config : dict
        Over :data:`PRETRAIN_DEFAULTS`.
    out : str or pathlib.Path
        The run folder.
    model : dict, optional
        The ``[model]`` table: ``recipe`` (``"simclr"``) and ``config`` (a partial training
        config, :func:`astrounsup.training.resolve_config`).
    chunks : int, optional
        Stop after this many surveys in all (default: ``config["chunks"]``).
    init : path or astrounsup.training.TrainedModel, optional
        Start a new run from these weights, with the surveys its ``progress`` lists done
        (``init.card["surveys"]``, as :func:`astrounsup.training.load_pretrained` gives).
    progress : bool, optional
        Show progress bars and a line per survey.
    device : str, optional

    Returns
    -------
    astrounsup.training.TrainedModel
        The encoder after the last survey, with ``progress`` (the dict written).

    Raises
    ------
    ValueError
        ``out`` holds a run with other settings (naming the first that differs).
    """
    cfg = merge_config(PRETRAIN_DEFAULTS, config, owner="pretrain")
    model = {"recipe": "simclr", "config": {}} | dict(model or {})
    total = int(cfg["chunks"] if chunks is None else chunks)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    record = {"settings": cfg, "model": model, "surveys": []}
    with output_lock(out):
        state = out / "progress.json"
        current = None
        if state.exists():
            record = _same_run(state, cfg, model)
            current = TrainedModel.load(out / "encoder.pt")
        elif init is not None:
            current = init if isinstance(init, TrainedModel) else TrainedModel.load(init)
            done = (getattr(current, "card", None) or {}).get("surveys", [])
            record["surveys"] = list(done)
        training = json.loads(json.dumps(model.get("config") or {}))
        training.setdefault("training", {})["max_steps"] = int(cfg["steps"])
        for index in range(len(record["surveys"]), total):
            settings = pretrain_survey_settings(cfg, index)
            t0 = time.perf_counter()
            survey = simulate_lens_survey(**settings, progress=False)
            t_survey = time.perf_counter() - t0
            if current is not None:  # each survey has a pixel scale of the configured range
                current.pixel_scale_range = tuple(cfg["pixel_scale"])
            current = train(
                survey.images, model=model["recipe"], bands=settings["bands"],
                pixel_scale=settings["pixel_scale"], config=training, init=current,
                device=device, progress=progress,
            )  # fmt: skip
            seconds = time.perf_counter() - t0
            done = {
                "index": index,
                "survey_seconds": round(t_survey, 1),
                "seconds": round(seconds, 1),
                "last_loss": float(current.history.loss[-1]),
            }
            record["surveys"].append(settings | done)
            current.save(out / "encoder.pt")
            with atomic_path(state) as tmp:
                tmp.write_text(json.dumps(record, indent=1))
            if progress:
                print(f"survey {index + 1}/{total}: {settings['pixel_scale']}\"/px, "
                      f"{settings['lens_fraction']:.3f} lenses, {seconds:.0f} s, loss "
                      f"{record['surveys'][-1]['last_loss']:.3f}", flush=True)  # fmt: skip
    if current is None:
        msg = f"chunks must be >= 1 for a new run in {out}; got {total}"
        raise ValueError(msg)
    current.progress = record
    return current


def _same_run(state, cfg, model):
    """The progress record in ``state``; refused when written with other settings."""
    record = json.loads(Path(state).read_text())
    for key, value in cfg.items():
        if key == "chunks":
            continue
        if record["settings"].get(key) != value:
            msg = (
                f"{state}: a run with [pretrain] {key} = {record['settings'].get(key)!r} "
                f"(now {value!r}); use another output folder, or the same settings"
            )
            raise ValueError(msg)
    if record.get("model") != json.loads(json.dumps(model)):
        msg = f"{state}: a run with another [model] table; use another output folder"
        raise ValueError(msg)
    return record
