"""Checkpoints: written atomically, read back without unpickling arbitrary objects."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
import xxhash

from astrounsup import __version__
from astrounsup._atomic import atomic_path

__all__ = ["load_checkpoint", "save_checkpoint"]


#: Prefix of a checkpoint's ``checksum`` entry: the hash that follows it.
_CHECKSUM_PREFIX = "xxh3_64:"


def _digest(value, h):
    """Feed ``value`` (tensors, arrays, numbers, strings, lists and dicts of them) into
    the hash ``h`` in one canonical order: dict keys sorted, each item typed."""
    if isinstance(value, dict):
        h.update(b"{")
        for key in sorted(value, key=str):
            h.update(repr(key).encode())
            _digest(value[key], h)
        h.update(b"}")
    elif isinstance(value, (list, tuple)):
        h.update(b"[")
        for item in value:
            _digest(item, h)
        h.update(b"]")
    elif isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        h.update(f"tensor{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(value, np.ndarray) and not value.dtype.hasobject:
        h.update(f"array{value.dtype.str}{value.shape}".encode())
        h.update(np.ascontiguousarray(value).tobytes())
    else:
        h.update(f"{type(value).__name__}:{value!r}".encode())


def state_checksum(state):
    """The checksum of a checkpoint's ``state``, its own ``checksum`` entry left out."""
    h = xxhash.xxh3_64()
    _digest({k: v for k, v in state.items() if k != "checksum"}, h)
    return _CHECKSUM_PREFIX + h.hexdigest()


def save_checkpoint(path, state):
    """Write ``state`` (tensors, numbers, strings, lists and dicts of them) atomically,
    with a ``checksum`` of its contents that :func:`load_checkpoint` checks.

    Returns
    -------
    pathlib.Path
    """
    path = Path(path)
    state = dict(state) | {"checksum": state_checksum(state)}
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
        The file is not a checkpoint this package wrote, or its contents differ from the
        checksum written with them (a damaged file); the message names it. A checkpoint
        without a checksum (written before they were kept) is read as it is.
    """
    path = Path(path)
    if not path.exists():
        msg = f"{path}: no such checkpoint"
        raise FileNotFoundError(msg)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        text = str(err)
        if "Weights only load failed" in text or "Unsupported global" in text:
            msg = (
                f"{path}: holds pickled Python objects, which no astrounsup checkpoint has; "
                "refused unread (loading them could run code)"
            )
        else:
            first = next((line for line in text.splitlines() if line.strip()), "")
            msg = f"{path}: not a readable astrounsup checkpoint ({type(err).__name__}: {first})"
        raise ValueError(msg) from None
    if not isinstance(state, dict) or state.get("format") != "astrounsup.checkpoint":
        msg = f"{path}: not an astrounsup checkpoint"
        raise ValueError(msg)
    written = state.get("checksum")
    if written is not None and written != state_checksum(state):
        msg = (
            f"{path}: a damaged checkpoint: its contents differ from the checksum written "
            "with them; restore it or train again"
        )
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
