"""The HDF5 cutout store: one file holding many cutouts and their metadata table.

Layout (format ``astrounsup.cutouts``, version 2):

``/images``
    float32 dataset of shape ``(n, bands, ny, nx)``, chunked in blocks of whole cutouts.
    Uncompressed by default: noise-dominated float32 cutouts compress only to ~0.86 of their
    size with gzip, and decompressing them caps reading at ~10,000 cutouts/s on two cores.
    ``compression="gzip"`` or ``"lzf"`` trades that speed for the space.
``/masks`` (optional)
    bool dataset of the same shape, True where a pixel is flagged bad.
``/bad_pixels``
    int32 ``(n, bands)``: the number of NaN, infinite or flagged pixels of each cutout in
    each band, counted once at writing so that readers check only the cutouts that have
    any (version 1 stores hold ``(n,)``, the sum over the bands).
``/catalog``
    The metadata table (astropy's HDF5 table format with serialised units and ``meta``),
    one row per cutout, with at least ``object_id``, ``ra`` and ``dec``, and (version 2)
    ``bad_fraction`` ``(n, bands)``, the fraction of each band's pixels that are bad, and
    ``bad_pixel_flag``, True where a band has no good pixel or more than the
    ``max_bad_fraction`` file attribute bad.
file attributes
    ``format``, ``format_version``, ``bands``, ``pixel_scale`` (arcsec), ``flux_unit``,
    ``n_cutouts``, the provenance (``step``, ``astrounsup_version``, ``date``, ``versions``) and
    ``complete``, which is set last:
    a store whose writer was interrupted never reads as complete.
"""

from __future__ import annotations

import math
from pathlib import Path

import h5py
import numpy as np
from astropy.io.misc.hdf5 import read_table_hdf5, write_table_hdf5
from astropy.table import QTable

from astrounsup._atomic import atomic_path
from astrounsup._h5write import open_h5_for_writing
from astrounsup._provenance import provenance

__all__ = [
    "COMPRESSIONS",
    "MAX_BAD_FRACTION",
    "STORE_FORMAT",
    "STORE_VERSION",
    "StoreError",
    "bad_pixel_flags",
    "open_store",
    "read_store",
    "store_info",
    "write_store",
]

STORE_FORMAT = "astrounsup.cutouts"
STORE_VERSION = 2
#: Default most bad pixels a band of a cutout may have before the cutout is flagged (and
#: rejected by ingest).
MAX_BAD_FRACTION = 0.5
_CHUNK_BYTES = 4 << 20  # ~4 MiB chunks of whole cutouts: fast sequential reads
#: Compressions of `/images` (see the module documentation for their cost).
COMPRESSIONS = (None, "gzip", "lzf")


class StoreError(ValueError):
    """A file that is not a complete astrounsup cutout store."""


def _check_table(table, n):
    if len(table) != n:
        msg = f"table has {len(table)} rows but there are {n} images"
        raise ValueError(msg)
    missing = [c for c in ("object_id", "ra", "dec") if c not in table.colnames]
    if missing:
        msg = f"table lacks the required columns {missing}"
        raise ValueError(msg)
    ids = np.asarray(table["object_id"]).astype(str)
    uniq, counts = np.unique(ids, return_counts=True)
    if uniq.size != ids.size:
        msg = f"table has duplicate object_id values: {uniq[counts > 1][:5].tolist()}"
        raise ValueError(msg)


def init_store(
    f, *, cutout_shape, bands, pixel_scale, flux_unit="nmgy", compression=None, n=0, masks=False
):
    """Create the datasets and attributes of an (incomplete) store in an open h5py file.

    ``/images`` (and ``/masks`` if asked) start with ``n`` rows and can grow along the first
    axis; :func:`finish_store` completes the store.
    """
    if compression not in COMPRESSIONS:
        msg = f"compression must be one of {COMPRESSIONS}; got {compression!r}"
        raise ValueError(msg)
    bands = [str(b) for b in bands]
    if cutout_shape[0] != len(bands):
        msg = f"images have {cutout_shape[0]} bands but bands names {len(bands)}: {bands}"
        raise ValueError(msg)
    per_cutout = int(np.prod(cutout_shape)) * 4
    chunk_n = max(1, math.floor(_CHUNK_BYTES / per_cutout))
    f.attrs["format"] = STORE_FORMAT
    f.attrs["format_version"] = STORE_VERSION
    f.attrs["complete"] = False
    f.attrs["bands"] = np.array(bands, dtype=h5py.string_dtype())
    f.attrs["pixel_scale"] = float(pixel_scale) if pixel_scale is not None else np.nan
    f.attrs["flux_unit"] = flux_unit
    filters = {"compression": compression, "shuffle": compression is not None}
    if compression == "gzip":
        filters["compression_opts"] = 1
    f.create_dataset(
        "images",
        shape=(n, *cutout_shape),
        maxshape=(None, *cutout_shape),
        dtype="f4",
        chunks=(chunk_n, *cutout_shape),
        **filters,
    )
    nb = len(bands)
    f.create_dataset(
        "bad_pixels", shape=(n, nb), maxshape=(None, nb), dtype="i4",
        chunks=(max(1024, chunk_n), nb),
    )  # fmt: skip
    if masks:
        f.create_dataset(
            "masks",
            shape=(n, *cutout_shape),
            maxshape=(None, *cutout_shape),
            dtype="?",
            chunks=(chunk_n, *cutout_shape),
            compression="gzip",
            compression_opts=1,
        )


def count_bad_pixels(images, masks=None):
    """NaN, infinite or flagged pixels of each cutout in each band, int32 (n, bands)."""
    bad = ~np.isfinite(images)
    if masks is not None:
        bad |= masks
    return bad.reshape(*images.shape[:2], -1).sum(axis=2).astype(np.int32)


def bad_pixel_flags(bad_pixels, pixels_per_band, *, max_bad_fraction=MAX_BAD_FRACTION):
    """``(bad_fraction, flag)`` from per-band counts of bad pixels.

    Parameters
    ----------
    bad_pixels : array_like of int, shape (n, bands)
    pixels_per_band : int
    max_bad_fraction : float, optional
        A cutout is flagged when a band has more than this fraction bad, or none good.

    Returns
    -------
    bad_fraction : numpy.ndarray of shape (n, bands), float32
    flag : numpy.ndarray of shape (n,), bool

    Examples
    --------
    >>> frac, flag = bad_pixel_flags([[0, 4], [1, 0], [3, 0]], 4, max_bad_fraction=0.5)
    >>> frac.tolist(), flag.tolist()
    ([[0.0, 1.0], [0.25, 0.0], [0.75, 0.0]], [True, False, True])
    """
    check_bad_fraction(max_bad_fraction)
    frac = np.asarray(bad_pixels, dtype=np.float64) / float(pixels_per_band)
    frac = frac.reshape(len(frac), -1)
    flag = ((frac > max_bad_fraction) | (frac >= 1.0)).any(axis=1)
    return frac.astype(np.float32), flag


def check_bad_fraction(value, name="max_bad_fraction"):
    """Refuse a bad-pixel threshold outside [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        msg = f"{name} must be a number in [0, 1]; got {value!r}"
        raise ValueError(msg)


def finish_store(f, table, *, step="astrounsup.io.write_store", max_bad_fraction=MAX_BAD_FRACTION):
    """Write the catalog (with each cutout's ``bad_fraction`` and ``bad_pixel_flag``), stamp
    the provenance of ``step`` and mark an open store complete (the last write)."""
    _check_table(table, f["images"].shape[0])
    table = QTable(table)
    frac, flag = bad_pixel_flags(
        f["bad_pixels"][...], int(np.prod(f["images"].shape[2:])),
        max_bad_fraction=max_bad_fraction,
    )  # fmt: skip
    table["bad_fraction"] = frac
    table["bad_pixel_flag"] = flag
    f.attrs["max_bad_fraction"] = float(max_bad_fraction)
    if "catalog" in f:
        del f["catalog"]
    write_table_hdf5(QTable(table), f, path="catalog", serialize_meta=True)
    f.attrs["n_cutouts"] = f["images"].shape[0]
    for key, value in provenance(step).items():
        f.attrs[key] = value
    f.flush()
    f.attrs["complete"] = True


def write_store(
    path,
    images,
    table,
    *,
    bands,
    pixel_scale,
    flux_unit="nmgy",
    masks=None,
    compression=None,
    max_bad_fraction=MAX_BAD_FRACTION,
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
    pixel_scale : float or None
        Arcsec per pixel.
    flux_unit : str, optional
        Unit of the pixel values.
    masks : numpy.ndarray of bool, shape (n, bands, ny, nx), optional
        Flagged pixels, stored as ``/masks``.
    compression : {None, "gzip", "lzf"}, optional
        Compression of ``/images`` (see the module documentation for the cost).
    max_bad_fraction : float, optional
        Cutouts with a band more bad than this (or with no good pixel) are kept but
        flagged: ``bad_pixel_flag`` in the catalog.

    Returns
    -------
    pathlib.Path
        The written path.

    Raises
    ------
    ValueError
        If the shapes, bands and table disagree, or object ids repeat.
    """
    images = np.asarray(images)
    if images.ndim != 4:
        msg = f"images must have shape (n, bands, ny, nx); got shape {images.shape}"
        raise ValueError(msg)
    if len(bands) != images.shape[1]:
        msg = f"images have {images.shape[1]} bands but bands names {len(bands)}: {list(bands)}"
        raise ValueError(msg)
    _check_table(table, images.shape[0])
    check_bad_fraction(max_bad_fraction)
    if masks is not None and np.shape(masks) != images.shape:
        msg = f"masks must have the shape of images {images.shape}; got {np.shape(masks)}"
        raise ValueError(msg)
    path = Path(path)
    with atomic_path(path) as tmp, open_h5_for_writing(tmp, "w", name=path) as f:
        init_store(
            f,
            cutout_shape=images.shape[1:],
            bands=bands,
            pixel_scale=pixel_scale,
            flux_unit=flux_unit,
            compression=compression,
            n=images.shape[0],
            masks=masks is not None,
        )
        step = f["images"].chunks[0] * 16
        for lo in range(0, images.shape[0], step):
            block = np.asarray(images[lo : lo + step], dtype=np.float32)
            f["images"][lo : lo + step] = block
            block_masks = None if masks is None else np.asarray(masks[lo : lo + step], bool)
            if block_masks is not None:
                f["masks"][lo : lo + step] = block_masks
            f["bad_pixels"][lo : lo + step] = count_bad_pixels(block, block_masks)
        finish_store(f, table, max_bad_fraction=max_bad_fraction)
    return path


def open_store(path):
    """Open a complete store read-only, after checking what it is.

    Returns
    -------
    h5py.File
        Close it (or use it as a context manager) when done.

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    StoreError
        If the file cannot be opened as HDF5, is not an astrounsup store, or is incomplete.
    """
    path = Path(path)
    if not path.exists():
        msg = f"{path}: no such cutout store"
        raise FileNotFoundError(msg)
    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError) as err:
        msg = f"{path}: cannot be opened as HDF5 ({err})"
        raise StoreError(msg) from err
    fmt = f.attrs.get("format")
    if fmt != STORE_FORMAT:
        f.close()
        msg = f"{path}: not an astrounsup cutout store (format={fmt!r})"
        raise StoreError(msg)
    if not bool(f.attrs.get("complete", False)):
        f.close()
        msg = (
            f"{path}: the store is incomplete (its writer was interrupted; "
            "`astrounsup ingest` resumes it)"
        )
        raise StoreError(msg)
    return f


def _attrs(f):
    attrs = dict(f.attrs.items())
    attrs["bands"] = tuple(str(b.decode() if isinstance(b, bytes) else b) for b in attrs["bands"])
    return attrs


def read_table(f):
    """The ``/catalog`` table of an open store, strings as ``str``."""
    table = QTable(read_table_hdf5(f, path="catalog"))
    # HDF5 holds strings as bytes; give them back as the str they were written as.
    table.convert_bytestring_to_unicode()
    return table


def read_store(path):
    """Read a whole cutout store into memory.

    For stores larger than memory use :class:`astrounsup.io.CutoutDataset`, which reads
    lazily.

    Parameters
    ----------
    path : str or pathlib.Path
        A store written by :func:`write_store`, ``astrounsup simulate`` or
        ``astrounsup ingest``.

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
    with open_store(path) as f:
        return f["images"][...], read_table(f), _attrs(f)


def store_info(path):
    """Describe a store: its attributes, shapes, storage and catalog columns, as a dict."""
    with open_store(path) as f:
        info = _attrs(f)
        images = f["images"]
        info.update(
            path=str(path),
            shape=images.shape,
            chunks=images.chunks,
            compression=images.compression,
            has_masks="masks" in f,
            columns=read_table(f).colnames,
            size_bytes=Path(path).stat().st_size,
        )
    return info
