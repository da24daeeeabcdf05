"""Checksums of what astrounsup writes: one per cutout of a store, one per metadata
dataset (catalogs, counts, latent vectors).

Each cutout's checksum is the 64-bit XXH3 hash of its float32 pixels as stored
(little-endian, C order), computed from the array that is written. A reader checks each cutout
the first time it reads it, so a byte changed on disk after writing is found before the
cutout is used. XXH3 hashes
about 40 GB/s on one core (``zlib.crc32``: about 3.5 GB/s, which would cost a sequential read
of 64x64x3 cutouts three times what the read itself costs).
"""

from __future__ import annotations

import numpy as np
import xxhash

#: Name of the hash, kept in the store's ``checksum`` attribute.
CHECKSUM = "xxh3_64"


def _as_stored(images):
    return np.ascontiguousarray(images, dtype="<f4")


def row_checksums(images, rows=None):
    """XXH3-64 of cutouts' float32 bytes, uint64: of every one of images (n, ...), or of
    the positions ``rows`` only."""
    images = _as_stored(images)
    n = images.shape[0]
    rows = range(n) if rows is None else np.asarray(rows).tolist()
    if images.size == 0:
        return np.zeros(len(rows), dtype=np.uint64)
    step = images.nbytes // n
    raw = memoryview(images.reshape(-1)).cast("B")
    digest = xxhash.xxh3_64_intdigest
    return np.fromiter(
        (digest(raw[i * step : (i + 1) * step]) for i in rows), dtype=np.uint64, count=len(rows)
    )


def mismatched(images, expected):
    """Positions (into ``images``) of the cutouts whose checksum differs from ``expected``."""
    return np.nonzero(row_checksums(images) != np.asarray(expected, dtype=np.uint64))[0]


def array_checksum(values):
    """XXH3-64 of an array of fixed-size dtype (its dtype, shape and bytes), as an int."""
    values = np.ascontiguousarray(values)
    if values.dtype.hasobject:
        msg = f"cannot checksum an array of dtype {values.dtype} (it holds Python objects)"
        raise TypeError(msg)
    h = xxhash.xxh3_64()
    h.update(str(values.dtype.descr).encode())
    h.update(str(values.shape).encode())
    h.update(memoryview(values).cast("B"))
    return h.intdigest()


def read_with_check(dataset):
    """``(values, intact)``: the whole h5py ``dataset``, and whether its bytes match its
    ``checksum`` attribute (True for a dataset written without one)."""
    values = dataset[...]
    expected = dataset.attrs.get("checksum")
    return values, expected is None or array_checksum(values) == int(expected)
