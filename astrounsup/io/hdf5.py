"""The HDF5 cutout store: one file holding many cutouts and their metadata table.

Layout (format ``astrounsup.cutouts``, version 1):

``/images``
    float32 dataset of shape ``(n, bands, ny, nx)``, chunked in blocks of whole cutouts and
    compressed (gzip with byte shuffle).
``/catalog``
    The metadata table (astropy's HDF5 table format with serialised units and ``meta``),
    one row per cutout, with at least ``object_id``, ``ra`` and ``dec``.
file attributes
    ``format``, ``format_version``, ``bands``, ``pixel_scale`` (arcsec), ``flux_unit``,
    ``n_cutouts``, ``astrounsup_version``, ``created`` and ``complete``, which is set last:
    a store whose writer was interrupted never reads as complete.
"""

from __future__ import annotations

import datetime
import math
from pathlib import Path

import h5py
import numpy as np
from astropy.io.misc.hdf5 import read_table_hdf5, write_table_hdf5
from astropy.table import QTable

from astrounsup._atomic import atomic_path

__all__ = ["STORE_FORMAT", "STORE_VERSION", "StoreError", "read_store", "write_store"]

STORE_FORMAT = "astrounsup.cutouts"
STORE_VERSION = 1
_CHUNK_BYTES = 1 << 20  # aim for ~1 MiB chunks of whole cutouts


class StoreError(ValueError):
    """A file that is not a complete astrounsup cutout store."""


def write_store(
    path,
    images,
    table,
    *,
    bands,
    pixel_scale,
    flux_unit="nmgy",
    compression="gzip",
    compression_opts=1,
):
    """Write cutouts and their metadata to an HDF5 store, atomically.

    Parameters
    ----------
    path : str or pathlib.Path
        Destination ``.h5`` file; replaced only once the new store is complete.
    images : numpy.ndarray of shape (n, bands, ny, nx)
        Cutouts, stored as float32.
    table : astropy.table.Table
        ``n`` rows of metadata with ``object_id``, ``ra`` and ``dec`` columns.
    bands : sequence of str
        Name of each image plane.
    pixel_scale : float
        Arcsec per pixel.
    flux_unit : str, optional
        Unit of the pixel values.
    compression, compression_opts : optional
        HDF5 compression filter and level for the images.

    Returns
    -------
    pathlib.Path
        The written path.

    Raises
    ------
    ValueError
        If the shapes, bands and table disagree.
    """
    images = np.asarray(images)
    if images.ndim != 4:
        msg = f"images must have shape (n, bands, ny, nx); got shape {images.shape}"
        raise ValueError(msg)
    bands = [str(b) for b in bands]
    if images.shape[1] != len(bands):
        msg = f"images have {images.shape[1]} bands but bands names {len(bands)}: {bands}"
        raise ValueError(msg)
    if len(table) != images.shape[0]:
        msg = f"table has {len(table)} rows but there are {images.shape[0]} images"
        raise ValueError(msg)
    missing = [c for c in ("object_id", "ra", "dec") if c not in table.colnames]
    if missing:
        msg = f"table lacks the required columns {missing}"
        raise ValueError(msg)
    ids = np.asarray(table["object_id"]).astype(str)
    if np.unique(ids).size != ids.size:
        msg = "table has duplicate object_id values"
        raise ValueError(msg)
    from astrounsup import __version__

    path = Path(path)
    per_cutout = int(np.prod(images.shape[1:])) * 4
    chunk_n = max(1, min(images.shape[0], math.floor(_CHUNK_BYTES / per_cutout)))
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["format"] = STORE_FORMAT
        f.attrs["format_version"] = STORE_VERSION
        f.attrs["complete"] = False
        dset = f.create_dataset(
            "images",
            shape=images.shape,
            dtype="f4",
            chunks=(chunk_n, *images.shape[1:]),
            compression=compression,
            compression_opts=compression_opts if compression == "gzip" else None,
            shuffle=compression is not None,
        )
        for lo in range(0, images.shape[0], chunk_n):
            dset[lo : lo + chunk_n] = images[lo : lo + chunk_n].astype(np.float32, copy=False)
        write_table_hdf5(QTable(table), f, path="catalog", serialize_meta=True)
        f.attrs["bands"] = np.array(bands, dtype=h5py.string_dtype())
        f.attrs["pixel_scale"] = float(pixel_scale)
        f.attrs["flux_unit"] = flux_unit
        f.attrs["n_cutouts"] = images.shape[0]
        f.attrs["astrounsup_version"] = __version__
        f.attrs["created"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        f.attrs["complete"] = True
    return path


def read_store(path):
    """Read a whole cutout store into memory.

    Parameters
    ----------
    path : str or pathlib.Path
        A store written by :func:`write_store` (or ``astrounsup simulate``).

    Returns
    -------
    images : numpy.ndarray of shape (n, bands, ny, nx), float32
    table : astropy.table.QTable
        The metadata, with units and ``meta``.
    attrs : dict
        The file attributes (``bands`` as a tuple of str, ``pixel_scale``, ...).

    Raises
    ------
    StoreError
        If the file is not an astrounsup store, or its writer did not finish.
    """
    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        msg = f"{path}: cannot be opened as HDF5 ({err})"
        raise StoreError(msg) from err
    with f:
        if f.attrs.get("format") != STORE_FORMAT:
            msg = f"{path}: not an astrounsup cutout store (format={f.attrs.get('format')!r})"
            raise StoreError(msg)
        if not bool(f.attrs.get("complete", False)):
            msg = f"{path}: the store is incomplete (its writer was interrupted)"
            raise StoreError(msg)
        attrs = {k: v for k, v in f.attrs.items()}
        attrs["bands"] = tuple(
            str(b.decode() if isinstance(b, bytes) else b) for b in attrs["bands"]
        )
        images = f["images"][...]
        table = QTable(read_table_hdf5(f, path="catalog"))
    # HDF5 holds strings as bytes; give them back as the str they were written as.
    table.convert_bytestring_to_unicode()
    return images, table, attrs
