"""The HDF5 cutout store: one file holding many cutouts and their metadata table.

Layout (format ``astrounsup.cutouts``, version 3):

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
``/checksums``
    uint64 ``(n,)`` (version 3): the XXH3-64 hash of each cutout's float32 pixels, verified
    after every read, so a cutout changed on disk after writing is found the first time it
    is read (:func:`verify_store` checks them all).
``/catalog``
    The metadata table (astropy's HDF5 table format with serialised units and ``meta``),
    one row per cutout, with at least ``object_id``, ``ra`` and ``dec``, and (version 2)
    ``bad_fraction`` ``(n, bands)``, the fraction of each band's pixels that are bad, and
    ``bad_pixel_flag``, True where a band has no good pixel or more than the
    ``max_bad_fraction`` file attribute bad.
file attributes
    ``format``, ``format_version``, ``bands``, ``pixel_scale`` (arcsec), ``flux_unit``,
    ``n_cutouts``, ``checksum`` (the hash's name; ``/catalog`` and ``/bad_pixels`` carry a
    ``checksum`` attribute of their own bytes), ``attrs_checksum`` (of the attributes that
    say what the pixels mean: bands, pixel scale, unit, ...), the provenance (``step``,
    ``astrounsup_version``, ``date``, ``versions``) and ``complete``, which is set last:
    a store whose writer was interrupted never reads as complete.
"""

from __future__ import annotations

import math
from pathlib import Path

import h5py
import numpy as np
import xxhash
from astropy.io.misc.hdf5 import read_table_hdf5, write_table_hdf5
from astropy.table import QTable

from astrounsup._atomic import atomic_path
from astrounsup._checksums import (
    CHECKSUM,
    array_checksum,
    mismatched,
    read_with_check,
    row_checksums,
)
from astrounsup._estimators import check_pixel_scale
from astrounsup._h5write import open_h5_for_writing
from astrounsup._locks import being_written
from astrounsup._provenance import provenance

__all__ = [
    "COMPRESSIONS",
    "MAX_BAD_FRACTION",
    "STORE_FORMAT",
    "STORE_VERSION",
    "StoreError",
    "bad_pixel_flags",
    "open_store",
    "read_store_file",
    "store_file_info",
    "verify_store_file",
    "write_store",
]

#: The ``format`` attribute of a cutout store.
STORE_FORMAT = "astrounsup.cutouts"
#: The store format version this astrounsup writes (``format_version``); newer ones are refused.
STORE_VERSION = 3
#: Default most bad pixels a band of a cutout may have before the cutout is flagged (and
#: rejected by ingest).
MAX_BAD_FRACTION = 0.5
#: The datasets astropy writes a table into (the rows, and the units and ``meta``).
_TABLE_DATASETS = ("catalog", "catalog.__table_column_meta__")
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
    f.attrs["checksum"] = CHECKSUM
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
    f.create_dataset(
        "checksums", shape=(n,), maxshape=(None,), dtype="u8", chunks=(max(4096, chunk_n),)
    )
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
    for name in _TABLE_DATASETS:
        if name in f:
            del f[name]
    write_table_hdf5(QTable(table), f, path="catalog", serialize_meta=True)
    for name in ("bad_pixels", *_TABLE_DATASETS):
        if name in f:
            f[name].attrs["checksum"] = array_checksum(f[name][...])
    f.attrs["n_cutouts"] = f["images"].shape[0]
    f.attrs["format_version"] = STORE_VERSION
    for key, value in provenance(step).items():
        f.attrs[key] = value
    f.attrs["attrs_checksum"] = _attrs_checksum(f)
    f.flush()
    f.attrs["complete"] = True


#: File attributes that change what the cutouts mean; ``attrs_checksum`` covers them.
_SCIENCE_ATTRS = (
    "bands", "pixel_scale", "flux_unit", "n_cutouts", "max_bad_fraction", "checksum",
    "format_version",
)  # fmt: skip


def _attrs_checksum(f):
    h = xxhash.xxh3_64()
    for key in _SCIENCE_ATTRS:
        h.update(f"{key}={np.asarray(f.attrs.get(key)).tolist()!r};".encode())
    return h.intdigest()


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
        looks = (" (it looks channels-last: use np.moveaxis(images, -1, 1))"
                 if images.shape[-1] == len(bands) else "")  # fmt: skip
        msg = (
            f"images have {images.shape[1]} bands but bands names {len(bands)}: {list(bands)} "
            f"(axis 1 of (n, bands, ny, nx)){looks}"
        )
        raise ValueError(msg)
    if pixel_scale is not None and not (isinstance(pixel_scale, float) and np.isnan(pixel_scale)):
        check_pixel_scale(pixel_scale)  # NaN, like None: not known
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
            f["checksums"][lo : lo + step] = row_checksums(block)
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
        If the file cannot be opened as HDF5, another process is writing it, it is not an
        astrounsup store, it is incomplete, or it lacks a dataset or attribute of the format.
    """
    path = Path(path)
    if not path.exists():
        msg = f"{path}: no such cutout store"
        raise FileNotFoundError(msg)
    if path.is_dir():
        inside = sorted(p.name for p in path.glob("*.h5"))
        hint = f" (it holds {', '.join(inside)})" if inside else ""
        shards = "; a folder of shards needs shards.json (astrounsup.io.write_manifest)"
        msg = f"{path}: a folder, not a cutout store{hint}{shards if inside else ''}"
        raise StoreError(msg)
    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError) as err:
        if "unable to lock file" in str(err):
            msg = (
                f"{path}: another program has it open for writing (HDF5 refuses to read a "
                "file while it is written); close it there, or wait for it to finish"
            )
        else:
            msg = f"{path}: cannot be opened as HDF5 ({err})"
        raise StoreError(msg) from err
    try:
        _check_structure(f, path)
    except StoreError:
        f.close()
        raise
    except (OSError, KeyError, ValueError, RuntimeError, TypeError) as err:
        f.close()
        msg = f"{path}: a damaged store: its structure cannot be read ({err})"
        raise StoreError(msg) from err
    return f


def _check_structure(f, path):
    fmt = f.attrs.get("format")
    if fmt is None and "images" in f and "catalog" in f:
        msg = f"{path}: a damaged store: its 'format' attribute cannot be read"
        raise StoreError(msg)
    if fmt != STORE_FORMAT:
        msg = f"{path}: not an astrounsup cutout store (format={fmt!r})"
        raise StoreError(msg)
    if not bool(f.attrs.get("complete", False)):
        if being_written(path):
            msg = f"{path}: another process is writing this store now; wait for it to finish"
        else:
            msg = (
                f"{path}: the store is incomplete (its writer was interrupted; "
                "`astrounsup ingest` resumes it)"
            )
        raise StoreError(msg)
    version = int(f.attrs.get("format_version", 1))
    if version > STORE_VERSION:
        msg = (
            f"{path}: store format version {version} is newer than this astrounsup reads "
            f"({STORE_VERSION}); upgrade astrounsup"
        )
        raise StoreError(msg)
    needed = ["images", "catalog"]
    needed += ["bad_pixels"] if version >= 2 else []
    needed += ["checksums"] if version >= 3 else []
    lacking = [f"/{name}" for name in needed if not isinstance(f.get(name), h5py.Dataset)]
    lacking += [f"the {a!r} attribute" for a in ("bands", "pixel_scale") if a not in f.attrs]
    if lacking:
        msg = (
            f"{path}: a damaged store: it lacks {', '.join(lacking)} (restore it, or ingest "
            "its cutouts again)"
        )
        raise StoreError(msg)
    expected = f.attrs.get("attrs_checksum")
    if expected is not None and _attrs_checksum(f) != int(expected):
        msg = (
            f"{path}: a damaged store: its attributes (bands, pixel scale, unit, ...) differ "
            "from the checksum written with them (restore it, or ingest its cutouts again)"
        )
        raise StoreError(msg)
    images = f["images"]
    if images.ndim != 4 or len(f.attrs["bands"]) != images.shape[1]:
        msg = (
            f"{path}: a damaged store: /images has shape {images.shape} but the store "
            f"names {len(f.attrs['bands'])} bands"
        )
        raise StoreError(msg)
    # The dtypes this package writes: another is a file written by other means, whose
    # pixels or checksums would be converted (and checksums then fail) silently.
    kinds = {"images": ("f", 4), "checksums": ("u", 8), "bad_pixels": ("iu", None),
             "masks": ("b", None)}  # fmt: skip
    for name, (kind, size) in kinds.items():
        dtype = f[name].dtype if isinstance(f.get(name), h5py.Dataset) else None
        if dtype is not None and (dtype.kind not in kind or (size and dtype.itemsize != size)):
            wanted = {"images": "float32", "checksums": "uint64", "bad_pixels": "integers",
                      "masks": "booleans"}[name]  # fmt: skip
            msg = (
                f"{path}: /{name} holds {dtype}, not {wanted}: not a store astrounsup wrote "
                "(write it with astrounsup.io.write_store or ingest its cutouts)"
            )
            raise StoreError(msg)
    for name in ("bad_pixels", "checksums"):
        if name in f and f[name].shape[0] != images.shape[0]:
            msg = (
                f"{path}: a damaged store: /{name} has {f[name].shape[0]} rows, /images "
                f"{images.shape[0]}"
            )
            raise StoreError(msg)


def _attrs(f):
    attrs = dict(f.attrs.items())
    attrs["bands"] = tuple(str(b.decode() if isinstance(b, bytes) else b) for b in attrs["bands"])
    return attrs


def read_checked(f, name):
    """The whole dataset ``name`` of an open store, after checking it against its
    ``checksum`` attribute (when it has one)."""
    try:
        values, intact = read_with_check(f[name])
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        msg = f"{f.filename}: /{name} cannot be read ({err}); the store is damaged"
        raise StoreError(msg) from err
    if not intact:
        msg = (
            f"{f.filename}: /{name} is damaged: its bytes differ from the checksum written "
            "with them (restore the store, or ingest its cutouts again)"
        )
        raise StoreError(msg)
    return values


def read_table(f):
    """The ``/catalog`` table of an open store, strings as ``str``; its bytes are checked
    against their checksum first."""
    for name in _TABLE_DATASETS:
        if name in f:
            read_checked(f, name)
    try:
        table = QTable(read_table_hdf5(f, path="catalog"))
    except (OSError, ValueError, KeyError, TypeError) as err:
        msg = f"{f.filename}: /catalog cannot be read as a table ({err}); the store is damaged"
        raise StoreError(msg) from err
    # HDF5 holds strings as bytes; give them back as the str they were written as.
    table.convert_bytestring_to_unicode()
    return table


def damaged_message(path, rows, table):
    """The one-line error for cutouts ``rows`` whose pixels fail their checksum."""
    rows = np.asarray(rows)
    ids = ", ".join(str(table["object_id"][r]) for r in rows[:5])
    more = f" and {rows.size - 5} more" if rows.size > 5 else ""
    return (
        f"{path}: {rows.size} cutout{'s' if rows.size != 1 else ''} damaged (object_id "
        f"{ids}{more}): pixels differ from the checksum written with them; `astrounsup info "
        "--verify STORE` counts them all (restore the store, or ingest its cutouts again)"
    )


def read_store_file(path):
    """:func:`astrounsup.io.read_store` of one store file."""
    with open_store(path) as f:
        table = read_table(f)
        images = _read_rows(f, "images", 0, f["images"].shape[0])
        if "checksums" in f:
            bad = mismatched(images, read_checked(f, "checksums"))
            if bad.size:
                raise StoreError(damaged_message(path, bad, table))
        return images, table, _attrs(f)


def _read_rows(f, name, lo, hi):
    try:
        return f[name][lo:hi]
    except (OSError, ValueError, RuntimeError) as err:
        msg = f"{f.filename}: rows {lo} to {hi - 1} of /{name} cannot be read ({err})"
        raise StoreError(msg) from err


def verify_store_file(path):
    """:func:`astrounsup.io.verify_store` of one store file: the rows whose pixels differ
    from their checksum."""
    with open_store(path) as f:
        if "checksums" not in f:
            msg = (
                f"{path}: format version {int(f.attrs.get('format_version', 1))} has no "
                "checksums, so damage cannot be detected (ingest the cutouts again to add them)"
            )
            raise StoreError(msg)
        read_table(f)
        if "bad_pixels" in f:
            read_checked(f, "bad_pixels")
        expected = read_checked(f, "checksums")
        n = f["images"].shape[0]
        step = f["images"].chunks[0] * 16
        bad = []
        for lo in range(0, n, step):
            hi = min(n, lo + step)
            bad.append(lo + mismatched(_read_rows(f, "images", lo, hi), expected[lo:hi]))
            if "masks" in f:
                _read_rows(f, "masks", lo, hi)
        return np.concatenate([np.zeros(0, np.int64), *bad]).astype(np.int64)


def store_file_info(path):
    """:func:`astrounsup.io.store_info` of one store file; a chunk index that cannot be
    read (a damaged store's structure) raises :class:`StoreError`."""
    with open_store(path) as f:
        info = _attrs(f)
        images = f["images"]
        if images.chunks is not None:
            try:
                images.id.get_num_chunks()
            except (OSError, RuntimeError) as err:
                msg = (
                    f"{path}: a damaged store: its chunk index cannot be read ({err}); "
                    "restore the file or write the store again"
                )
                raise StoreError(msg) from None
        info.update(
            path=str(path),
            shape=images.shape,
            chunks=images.chunks,
            compression=images.compression,
            has_masks="masks" in f,
            has_checksums="checksums" in f,
            columns=read_table(f).colnames,
            size_bytes=Path(path).stat().st_size,
        )
    return info
