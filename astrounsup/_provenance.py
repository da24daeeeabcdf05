"""The one stamp of what made an output: the step, its inputs and settings, the software."""

from __future__ import annotations

import datetime
import numbers
from importlib import metadata

from astrounsup import __version__

#: Packages whose versions every output records.
_PACKAGES = ("numpy", "astropy", "scikit-learn", "torch")


def _version(package):
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def provenance(step, **inputs):
    """Metadata saying what made an output: the step, its inputs and settings, software.

    Every writer of the package (catalogs, cutout stores, latents files, checkpoints,
    simulated tables) stamps its output with this, so the keys are the same everywhere.

    Parameters
    ----------
    step : str
        What made the output, e.g. ``"astrounsup cluster"``.
    **inputs
        Input files and settings: ``None`` values are left out, ``bool``, ``int``, ``float``
        and ``str`` kept (NumPy scalars as Python numbers), anything else (paths, sequences)
        written as its ``str``.

    Returns
    -------
    dict
        ``step``, ``astrounsup_version``, ``date`` (UTC, ISO 8601, to the second),
        ``versions`` (numpy, astropy, scikit-learn and torch) and the inputs.

    Examples
    --------
    >>> meta = provenance("astrounsup cluster", method="kmeans", k=20, labels=None)
    >>> meta["step"], meta["method"], meta["k"], "labels" in meta
    ('astrounsup cluster', 'kmeans', 20, False)
    >>> sorted(meta)[:4]
    ['astrounsup_version', 'date', 'k', 'method']
    """

    meta = {
        "step": step,
        "astrounsup_version": __version__,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "versions": "; ".join(f"{p} {_version(p)}" for p in _PACKAGES),
    }
    for key, value in inputs.items():
        if value is None:
            continue
        if isinstance(value, (bool, str)):
            meta[key] = value
        elif isinstance(value, numbers.Integral):
            meta[key] = int(value)
        elif isinstance(value, numbers.Real):
            meta[key] = float(value)
        else:
            meta[key] = str(value)
    return meta
