"""Result tables with provenance, and their atomic writing as FITS, ECSV, VOTable or HDF5."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
from astropy.io.fits.verify import VerifyWarning
from astropy.table import QTable

from astrounsup._atomic import atomic_path
from astrounsup._provenance import provenance

__all__ = ["CATALOG_FORMATS", "id_positions", "provenance", "result_catalog", "write_catalog"]

#: File suffix -> astropy table format.
CATALOG_FORMATS = {
    ".ecsv": "ascii.ecsv",
    ".fits": "fits",
    ".fit": "fits",
    ".vot": "votable",
    ".xml": "votable",
    ".h5": "hdf5",
    ".hdf5": "hdf5",
}


def id_positions(reference, wanted, *, what="objects", where="the catalog"):
    """Where each of the ids ``wanted`` stands in ``reference``: the join of two files by
    ``object_id``, refused when an id is missing.

    Parameters
    ----------
    reference : array_like of shape (n,)
        The ids of the table joined into (e.g. its ``object_id`` column).
    wanted : array_like of shape (m,)
        The ids to find.
    what, where : str, optional
        What the wanted ids are and what ``reference`` is, for the message.

    Returns
    -------
    numpy.ndarray of shape (m,), int

    Raises
    ------
    ValueError
        ``"<k> <what> are not in <where>, e.g. [...]"``.

    Examples
    --------
    >>> id_positions(["a", "b", "c"], ["c", "a"]).tolist()
    [2, 0]
    """
    pos = {v: i for i, v in enumerate(np.asarray(reference).astype(str).tolist())}
    ids = np.asarray(wanted).astype(str).tolist()
    missing = [v for v in ids if v not in pos]
    if missing:
        msg = f"{len(missing)} {what} are not in {where}, e.g. {missing[:3]}"
        raise ValueError(msg)
    return np.array([pos[v] for v in ids], dtype=np.int64)


def result_catalog(source, columns, *, meta=None):
    """The rows of ``source`` (ids, RA/Dec and whatever else it holds) with new columns.

    Parameters
    ----------
    source : astropy.table.Table
        One row per object, e.g. the catalog carried by a latents file.
    columns : dict of str to array_like
        New columns, each of length ``len(source)`` (replacing same-named ones).
    meta : dict, optional
        Added to the table's ``meta`` (see :func:`astrounsup.catalog.provenance`).

    Returns
    -------
    astropy.table.QTable
    """
    out = QTable(source, copy=True)
    for name, values in columns.items():
        values = values if hasattr(values, "unit") else np.asarray(values)
        if len(values) != len(out):
            msg = f"column {name!r} has {len(values)} rows; the catalog has {len(out)}"
            raise ValueError(msg)
        out[name] = values
    out.meta.update(meta or {})
    return out


def write_catalog(table, path, *, overwrite=False):
    """Write ``table`` to ``path`` in the format its suffix names, atomically.

    Parameters
    ----------
    table : astropy.table.Table
    path : str or pathlib.Path
        ``.ecsv``, ``.fits``, ``.vot``/``.xml`` (VOTable) or ``.h5``/``.hdf5``.
    overwrite : bool, optional

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ValueError
        For an unknown suffix.
    FileExistsError
        If ``path`` exists and ``overwrite`` is false.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from astropy.table import QTable
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> write_catalog(QTable({"object_id": ["a"], "score": [0.5]}), d / "c.ecsv").name
    'c.ecsv'
    """
    path = Path(path)
    fmt = CATALOG_FORMATS.get(path.suffix.lower())
    if fmt is None:
        allowed = sorted(CATALOG_FORMATS)
        msg = f"{path}: unknown catalog suffix {path.suffix!r}; use one of {allowed}"
        raise ValueError(msg)
    if path.exists() and not overwrite:
        msg = f"{path} exists; pass overwrite=True (--overwrite) to replace it"
        raise FileExistsError(msg)
    kwargs = {"serialize_meta": True, "path": "catalog"} if fmt == "hdf5" else {}
    table = QTable(table, copy=False)
    if fmt == "fits":
        table = _fits_ready(table)
    with atomic_path(path) as tmp, warnings.catch_warnings():
        # Long keywords become HIERARCH cards, as intended; units outside the FITS
        # standard (nanomaggies) are kept in the astropy table metadata of the file.
        warnings.filterwarnings("ignore", message="Keyword name", category=VerifyWarning)
        warnings.filterwarnings("ignore", message="The unit .* could not be saved")
        table.write(tmp, format=fmt, overwrite=True, **kwargs)
    return path


def _fits_ready(table):
    """A shallow copy whose nested metadata (dicts, lists) is JSON text, which a FITS
    header can hold; astropy would otherwise drop it."""
    out = table.copy(copy_data=False)
    for key, value in list(out.meta.items()):
        if isinstance(value, (dict, list, tuple)):
            out.meta[key] = json.dumps(value, default=str)
    return out
