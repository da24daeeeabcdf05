"""Any cutout store, one HDF5 file (:mod:`astrounsup.io.hdf5`) or a folder of shards
(:mod:`astrounsup.io.shards`): read it, verify it, describe it."""

from __future__ import annotations

from astrounsup.io.hdf5 import read_store_file, store_file_info, verify_store_file
from astrounsup.io.shards import is_sharded, read_shards, shards_info, verify_shards

__all__ = ["read_store", "store_info", "verify_store"]


def read_store(path):
    """Read a whole cutout store into memory.

    For stores larger than memory use :class:`astrounsup.io.CutoutDataset`, which reads
    lazily.

    Parameters
    ----------
    path : str or pathlib.Path
        A store written by :func:`~astrounsup.io.write_store`, ``astrounsup simulate`` or
        ``astrounsup ingest``, or a sharded store (:mod:`astrounsup.io.shards`).

    Returns
    -------
    images : numpy.ndarray of shape (n, bands, ny, nx), float32
    table : astropy.table.QTable
        The metadata, with units and ``meta``.
    attrs : dict
        The file attributes (``bands`` as a tuple of str, ``pixel_scale``, ...).

    Raises
    ------
    astrounsup.io.StoreError
        If the file is not an astrounsup store, its writer did not finish, or a cutout's
        pixels or the catalog differ from their checksums.
    """
    if is_sharded(path):
        return read_shards(path)
    return read_store_file(path)


def verify_store(path):
    """Check every cutout of a store against its checksum (and the catalog, the bad-pixel
    counts and the masks' compressed chunks).

    Parameters
    ----------
    path : str or pathlib.Path
        A complete store of format version 3 or later, or a sharded store
        (:mod:`astrounsup.io.shards`), whose shards are checked in turn.

    Returns
    -------
    numpy.ndarray of int64
        Rows whose pixels differ from their checksum (empty when all are intact); rows of
        the whole for a sharded store.

    Raises
    ------
    astrounsup.io.StoreError
        If the store has no checksums (written before format version 3), or the catalog,
        the counts or a chunk of masks are damaged.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from astrounsup.io import write_store
    >>> from astrounsup.simulate import simulate_lens_survey
    >>> s = simulate_lens_survey(6, seed=0)
    >>> p = write_store(pathlib.Path(tempfile.mkdtemp()) / "s.h5", s.images, s.table,
    ...                 bands=s.bands, pixel_scale=s.pixel_scale)
    >>> verify_store(p).tolist()
    []
    """
    if is_sharded(path):
        return verify_shards(path)
    return verify_store_file(path)


def store_info(path):
    """Describe a store: its attributes, shapes, storage and catalog columns, as a dict.

    A sharded store (:mod:`astrounsup.io.shards`) is described as a whole, with
    ``shards``, the description of each shard.
    """
    if is_sharded(path):
        return shards_info(path)
    return store_file_info(path)
