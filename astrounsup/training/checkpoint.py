"""Checkpoints: written atomically, read back without unpickling arbitrary objects."""

from __future__ import annotations

import io
from pathlib import Path

import torch

from astrounsup import __version__
from astrounsup._atomic import atomic_path

__all__ = ["load_checkpoint", "save_checkpoint"]


def save_checkpoint(path, state):
    """Write ``state`` (tensors, numbers, strings, lists and dicts of them) atomically.

    Returns
    -------
    pathlib.Path
    """
    path = Path(path)
    # Serialised in memory and written by Python, whose write errors (a full disk) are
    # reported; torch.save's own file writer turns them into an unrelated RuntimeError.
    buffer = io.BytesIO()
    torch.save(state, buffer)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(buffer.getbuffer())
    return path


def load_checkpoint(path, *, map_location="cpu"):
    """Read a checkpoint with ``torch.load(..., weights_only=True)``.

    Raises
    ------
    FileNotFoundError
        No such checkpoint.
    ValueError
        The file is not a checkpoint this package wrote (the message names it).
    """
    path = Path(path)
    if not path.exists():
        msg = f"{path}: no such checkpoint"
        raise FileNotFoundError(msg)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        msg = f"{path}: not a readable astrounsup checkpoint ({type(err).__name__}: {err})"
        raise ValueError(msg) from err
    if not isinstance(state, dict) or state.get("format") != "astrounsup.checkpoint":
        msg = f"{path}: not an astrounsup checkpoint"
        raise ValueError(msg)
    return state


def _load_weights(model, state, path):
    """``model.load_state_dict(state["model"])``; weights that do not fit ``model`` (another
    architecture, e.g. from another version) raise a ValueError naming ``path``."""

    try:
        model.load_state_dict(state["model"])
    except RuntimeError as err:
        written_by = state.get("provenance", {}).get("astrounsup_version", "unknown")
        msg = (
            f"{path}: its weights do not fit the {type(model).__name__} being loaded "
            f"(written by astrounsup {written_by}, read by "
            f"{__version__}; retrain, or read it with the version that wrote it): {err}"
        )
        raise ValueError(msg) from err
