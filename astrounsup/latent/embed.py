"""Latents files: the latent vectors of a set of cutouts with their catalog and provenance.

Layout (HDF5): ``/latents`` float32 ``(n, D)``; ``/catalog`` one row per object (astropy's
HDF5 table format, units and ``meta`` kept); each with a ``checksum`` attribute (XXH3-64 of
its bytes, checked when read); file attributes ``format`` (``astrounsup.latents``), the
provenance and the settings of the step that wrote it.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
from astropy.io.misc.hdf5 import write_table_hdf5
from astropy.table import QTable

from astrounsup._atomic import atomic_path
from astrounsup._checksums import array_checksum, read_with_check
from astrounsup._h5write import open_h5_for_writing
from astrounsup._provenance import provenance

__all__ = ["LATENTS_FORMAT", "is_latents_file", "read_latents", "write_latents"]

#: The ``format`` attribute of a latents file.
LATENTS_FORMAT = "astrounsup.latents"
#: Its datasets (astropy writes the catalog's units and meta beside it).
_DATASETS = ("latents", "catalog", "catalog.__table_column_meta__")


def write_latents(path, latents, table, *, meta=None, step="astrounsup.latent.write_latents"):
    """Write latents ``(n, D)`` and their metadata table to an HDF5 file, atomically.

    Parameters
    ----------
    path : str or pathlib.Path
        The ``.h5`` file to write; replaced only once complete.
    latents : array_like of shape (n, D)
    table : astropy.table.Table
        One row per latent vector (ids, RA/Dec, carried columns).
    meta : dict, optional
        Settings and inputs recorded as file attributes after the provenance of ``step``
        (``None`` values left out, paths as text; see :func:`astrounsup.catalog.provenance`).
    step : str, optional
        What made the latents.

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> from astropy.table import QTable
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "latents.h5"
    >>> _ = write_latents(path, np.eye(3), QTable({"object_id": ["a", "b", "c"]}), meta={"k": 3})
    >>> z, table, attrs = read_latents(path)
    >>> z.shape, table["object_id"].tolist(), int(attrs["k"]), attrs["format"]
    ((3, 3), ['a', 'b', 'c'], 3, 'astrounsup.latents')
    """
    latents = np.asarray(latents, dtype=np.float32)
    if latents.ndim != 2 or len(latents) != len(table):
        msg = (
            f"latents must be (n, D) with one row per table row ({len(table)}); got "
            f"shape {latents.shape}"
        )
        raise ValueError(msg)
    path = Path(path)
    with atomic_path(path) as tmp, open_h5_for_writing(tmp, "w", name=path) as f:
        f.attrs["format"] = LATENTS_FORMAT
        f.create_dataset("latents", data=latents)
        write_table_hdf5(QTable(table), f, path="catalog", serialize_meta=True)
        for name in _DATASETS:
            if name in f:
                f[name].attrs["checksum"] = array_checksum(f[name][...])
        for key, value in provenance(step, **(meta or {})).items():
            f.attrs[key] = value
    return path


def read_latents(path):
    """``(latents, table, attrs)`` of a file written by :func:`write_latents`.

    Returns
    -------
    latents : numpy.ndarray of shape (n, D), float32
    table : astropy.table.QTable
        One row per object, strings as ``str``.
    attrs : dict
        The file attributes: provenance and settings.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Not an astrounsup latents file, or a damaged one: rows that do not match its
        catalog, vectors that are not finite, blank or repeated object ids.
    """
    from astropy.io.misc.hdf5 import read_table_hdf5

    if not Path(path).is_file():
        msg = f"{path}: no such latents file"
        raise FileNotFoundError(msg)
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != LATENTS_FORMAT:
                msg = f"{path}: not an astrounsup latents file"
                raise ValueError(msg)
            _check_sums(path, f)
            table = QTable(read_table_hdf5(f, path="catalog"))
            table.convert_bytestring_to_unicode()
            latents, attrs = f["latents"][...], dict(f.attrs.items())
    except (OSError, KeyError, TypeError) as err:  # truncated or damaged: h5py names no file
        msg = f"{path}: damaged latents file ({err}); embed again"
        raise ValueError(msg) from None
    _check_rows(path, latents, table)
    return latents, table, attrs


def _check_sums(path, f):
    """Each dataset's bytes against the checksum written with them (files written before
    checksums have none)."""
    for name in _DATASETS:
        if name in f and not read_with_check(f[name])[1]:
            msg = f"{path}: damaged latents file: /{name} differs from its checksum; embed again"
            raise ValueError(msg)


def _check_rows(path, latents, table):
    """One finite vector per row, and unique, non-blank object ids."""
    if latents.ndim != 2 or len(latents) != len(table):
        msg = (
            f"{path}: damaged latents file: {latents.shape} vectors for {len(table)} catalog "
            "rows; embed again"
        )
        raise ValueError(msg)
    bad = ~np.isfinite(latents).all(axis=1)
    if bad.any():
        msg = (
            f"{path}: {int(bad.sum())} latent vectors are not finite (first at row "
            f"{int(np.argmax(bad))}); embed again"
        )
        raise ValueError(msg)
    if "object_id" in table.colnames:
        ids = np.asarray(table["object_id"]).astype(str)
        blank = np.char.strip(ids) == ""
        if blank.any():
            first = int(np.argmax(blank))
            msg = f"{path}: {int(blank.sum())} blank object ids (first at row {first})"
            raise ValueError(msg)
        uniq, counts = np.unique(ids, return_counts=True)
        if (counts > 1).any():
            dup = uniq[counts > 1]
            msg = f"{path}: {len(dup)} object ids repeat, e.g. {dup[:3].tolist()}"
            raise ValueError(msg)


def is_latents_file(path):
    """Whether ``path`` is a latents file of :func:`write_latents` (by its format mark)."""
    if Path(path).suffix.lower() not in (".h5", ".hdf5") or not Path(path).is_file():
        return False
    try:
        with h5py.File(path, "r") as f:
            return f.attrs.get("format") == LATENTS_FORMAT
    except OSError:
        return False
