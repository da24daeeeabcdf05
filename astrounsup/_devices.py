"""Where tensors go: one reading of a device name, and the automatic choice."""

from __future__ import annotations

import torch

#: Device types the package runs on.
DEVICE_TYPES = ("cpu", "cuda", "mps")

_ALLOWED = "'cpu', 'cuda', 'cuda:N' or 'mps'"


def parse_device(value, *, name="device"):
    """``value`` (a name such as ``"cuda:1"``, or a ``torch.device``) as a ``torch.device``.

    Raises
    ------
    ValueError
        Naming ``name``, the allowed values and ``value``, for anything else or for a
        device this machine does not have.
    """
    if isinstance(value, torch.device):
        device = value
    else:
        try:
            device = torch.device(value)
        except (RuntimeError, TypeError):
            device = None
        if device is None or device.type not in DEVICE_TYPES:
            msg = f"{name} must be {_ALLOWED}; got {value!r}"
            raise ValueError(msg) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        msg = f"{name} {value!r} was asked for but CUDA is not available"
        raise ValueError(msg)
    if device.type == "cuda" and device.index is not None:
        count = torch.cuda.device_count()
        if device.index >= count:
            msg = f"{name} {value!r} was asked for but this machine has {count} CUDA device(s)"
            raise ValueError(msg)
    if device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            msg = f"{name} {value!r} was asked for but Apple MPS is not available"
            raise ValueError(msg)
    return device


def model_device(model, device=None):
    """Where to run ``model``: ``device`` when given (checked), else where its weights are."""
    return parse_device(device) if device is not None else next(model.parameters()).device


def select_device(preference=None):
    """The device to run on: ``preference`` if given, else CUDA, then Apple MPS, then CPU.

    Parameters
    ----------
    preference : str or torch.device, optional
        ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.

    Returns
    -------
    torch.device

    Raises
    ------
    ValueError
        For another name, or a device this machine does not have (one line naming the
        allowed values).

    Examples
    --------
    >>> select_device("cpu")
    device(type='cpu')
    >>> select_device("gpu")
    Traceback (most recent call last):
    ...
    ValueError: device must be 'cpu', 'cuda', 'cuda:N' or 'mps'; got 'gpu'
    """
    if preference is not None:
        return parse_device(preference)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
