"""Latents files: the latent vectors of a set of cutouts with their catalog and provenance.

Layout (HDF5): ``/latents`` float32 ``(n, D)``; ``/catalog`` one row per object (astropy's
HDF5 table format, units and ``meta`` kept); each with a ``checksum`` attribute (XXH3-64 of
its bytes, checked when read); file attributes ``format`` (``astrounsup.latents``), the
provenance and the settings of the step that wrote it.

A latents set is a folder of latents files (``part-00000.h5``, ... one per shard of a
sharded store) with a manifest, ``latents.json``, listing them in order; it is read as the
one file their concatenation would be.
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

__all__ = [
    "LATENTS_FORMAT",
    "LATENTS_MANIFEST",
    "LatentsWriter",
    "is_latents_file",
    "merge_latents",
    "read_latents",
    "write_latents",
    "write_latents_set",
]

#: The ``format`` attribute of a latents file.
LATENTS_FORMAT = "astrounsup.latents"
#: The manifest of a latents set (a folder of latents files).
LATENTS_MANIFEST = "latents.json"
_SET_FORMAT = "astrounsup.latents-set"
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
    """``(latents, table, attrs)`` of a file written by :func:`write_latents`, or of a
    latents set (its folder or ``latents.json``), its files concatenated in order.

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

    if Path(path).is_dir() or Path(path).name == LATENTS_MANIFEST:
        return _read_set(path)
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
    """Whether ``path`` is a latents file of :func:`write_latents` (by its format mark), or
    a latents set (a folder with ``latents.json``)."""
    if Path(path).is_dir():
        return (Path(path) / LATENTS_MANIFEST).is_file()
    if Path(path).suffix.lower() not in (".h5", ".hdf5") or not Path(path).is_file():
        return False
    try:
        with h5py.File(path, "r") as f:
            return f.attrs.get("format") == LATENTS_FORMAT
    except OSError:
        return False


class LatentsWriter:
    """Write a latents file batch by batch, so that memory holds one batch, not the file.

    The file appears, complete, only when :meth:`finish` is called inside the ``with``
    block; leaving the block otherwise leaves nothing behind.

    Parameters
    ----------
    path : str or pathlib.Path
    n : int
        The number of vectors that will be appended.
    meta : dict, optional
    step : str, optional
        As :func:`write_latents` takes them.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> from astropy.table import QTable
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "latents.h5"
    >>> with LatentsWriter(path, 4) as w:
    ...     w.append(np.zeros((3, 2)))
    ...     w.append(np.ones((1, 2)))
    ...     _ = w.finish(QTable({"object_id": ["a", "b", "c", "d"]}))
    >>> read_latents(path)[0].tolist()
    [[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [1.0, 1.0]]
    """

    def __init__(self, path, n, *, meta=None, step="astrounsup.latent.LatentsWriter"):
        self.path, self.n, self.meta, self.step = Path(path), int(n), meta, step
        self._stack = None

    def __enter__(self):
        import contextlib

        self._stack = contextlib.ExitStack()
        tmp = self._stack.enter_context(atomic_path(self.path))
        self._f = self._stack.enter_context(open_h5_for_writing(tmp, "w", name=self.path))
        self._done, self._hash, self._finished = 0, None, False
        return self

    def append(self, latents):
        """Add vectors ``(m, D)``, the next ``m`` rows."""
        z = np.ascontiguousarray(latents, dtype=np.float32)
        if z.ndim != 2 or self._done + len(z) > self.n:
            msg = f"latents must be (m, D), at most {self.n - self._done} more rows; got {z.shape}"
            raise ValueError(msg)
        if self._hash is None:
            self._f.create_dataset(
                "latents", shape=(self.n, z.shape[1]), dtype="f4",
                chunks=(max(1, min(self.n, 2**20 // max(1, 4 * z.shape[1]))), z.shape[1]),
            )  # fmt: skip
            self._hash = _StreamChecksum(np.dtype("f4"), (self.n, z.shape[1]))
        self._f["latents"][self._done : self._done + len(z)] = z
        self._hash.update(z)
        self._done += len(z)

    def finish(self, table):
        """Write ``table`` (one row per vector) and the provenance; returns the path."""
        if self._done != self.n or len(table) != self.n:
            msg = f"{self.n} vectors expected; {self._done} appended, {len(table)} catalog rows"
            raise ValueError(msg)
        f = self._f
        if self._hash is None:  # no vector at all
            f.create_dataset("latents", shape=(0, 0), dtype="f4")
            self._hash = _StreamChecksum(np.dtype("f4"), (0, 0))
        f.attrs["format"] = LATENTS_FORMAT
        f["latents"].attrs["checksum"] = self._hash.intdigest()
        write_table_hdf5(QTable(table), f, path="catalog", serialize_meta=True)
        for name in _DATASETS[1:]:
            if name in f:
                f[name].attrs["checksum"] = array_checksum(f[name][...])
        for key, value in provenance(self.step, **(self.meta or {})).items():
            f.attrs[key] = value
        self._finished = True
        return self.path

    def __exit__(self, kind, value, tb):
        if kind is None and not self._finished:
            err = ValueError(f"{self.path}: LatentsWriter left without finish(); nothing written")
            self._stack.__exit__(ValueError, err, None)
            raise err
        return self._stack.__exit__(kind, value, tb)


class _StreamChecksum:
    """:func:`astrounsup._checksums.array_checksum` of an array given in row blocks."""

    def __init__(self, dtype, shape):
        import xxhash

        self._h = xxhash.xxh3_64()
        self._h.update(str(np.dtype(dtype).descr).encode())
        self._h.update(str(tuple(shape)).encode())

    def update(self, block):
        self._h.update(memoryview(np.ascontiguousarray(block)).cast("B"))

    def intdigest(self):
        return self._h.intdigest()


def _part_meta(path):
    with h5py.File(path, "r") as f:
        return f["latents"].shape, dict(f.attrs.items())


def merge_latents(parts, out, *, meta=None, step="astrounsup.latent.merge_latents", block=65536):
    """Concatenate latents files into one, in order, streaming the vectors.

    Parameters
    ----------
    parts : sequence of path
        Latents files of the same dimension; object ids unique across them.
    out : str or pathlib.Path
    meta : dict, optional
        Recorded as :func:`write_latents` does.
    step : str, optional
    block : int, optional
        Vectors copied at a time.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ValueError
        A part that is missing, damaged, of another dimension, or an id in two parts
        (the message names the files).
    """
    from astropy.table import vstack

    parts = [Path(p) for p in parts]
    tables, dims = [], set()
    for p in parts:
        if not p.is_file():
            msg = f"{p}: part of the latents is missing; embed its shard again"
            raise ValueError(msg)
        z, t, _ = read_latents(p)  # checked against its checksums
        dims.add(z.shape[1])
        tables.append(t)
        del z
    if len(dims) > 1:
        msg = f"latents of different dimensions {sorted(dims)} in {', '.join(map(str, parts))}"
        raise ValueError(msg)
    table = vstack(tables, join_type="exact") if tables else QTable()
    n = len(table)
    with LatentsWriter(out, n, meta=meta, step=step) as w:
        for p in parts:
            with h5py.File(p, "r") as f:
                for lo in range(0, f["latents"].shape[0], block):
                    w.append(f["latents"][lo : lo + block])
        _check_rows(out, np.zeros((n, 1), np.float32), table)  # ids unique across parts
        w.finish(table)
    return Path(out)


def write_latents_set(folder, parts, *, shards=None):
    """Write ``folder/latents.json`` listing the latents files ``parts`` in order.

    Parameters
    ----------
    folder : str or pathlib.Path
    parts : sequence of path
        Latents files inside ``folder``.
    shards : sequence of str, optional
        The store shard each part embeds, recorded beside it.

    Returns
    -------
    pathlib.Path
        The manifest.
    """
    import json
    import os

    folder = Path(folder)
    items = []
    for k, p in enumerate(parts):
        shape, _ = _part_meta(p)
        item = {"path": os.path.relpath(p, folder), "n": int(shape[0]), "dim": int(shape[1])}
        if shards is not None:
            item["shard"] = str(shards[k])
        items.append(item)
    record = {"format": _SET_FORMAT, "format_version": 1, "parts": items,
              "n": sum(i["n"] for i in items)}  # fmt: skip
    with atomic_path(folder / LATENTS_MANIFEST) as tmp:
        tmp.write_text(json.dumps(record, indent=1) + "\n")
    return folder / LATENTS_MANIFEST


def _read_set(path):
    """:func:`read_latents` of a latents set (its folder or manifest)."""
    import json

    from astropy.table import vstack

    path = Path(path)
    manifest = path / LATENTS_MANIFEST if path.is_dir() else path
    try:
        record = json.loads(manifest.read_text())
        items = record["parts"]
        names = [manifest.parent / item["path"] for item in items]
    except FileNotFoundError:
        msg = f"{path}: a folder, not a latents set (it has no {LATENTS_MANIFEST})"
        raise ValueError(msg) from None
    except (OSError, ValueError, KeyError, TypeError) as err:
        msg = f"{manifest}: not a readable manifest of a latents set ({err})"
        raise ValueError(msg) from None
    zs, tables, attrs = [], [], None
    for item, name in zip(items, names, strict=True):
        if not name.is_file():
            shard = f" (the latents of shard {item['shard']})" if "shard" in item else ""
            msg = f"{manifest}: part {name.name}{shard} is missing; embed that shard again"
            raise ValueError(msg)
        z, t, a = read_latents(name)
        if len(z) != int(item.get("n", len(z))):
            msg = f"{name}: {len(z)} vectors where {manifest.name} records {item['n']}"
            raise ValueError(msg)
        zs.append(z)
        tables.append(t)
        attrs = attrs or a
    latents = np.concatenate(zs) if zs else np.zeros((0, 0), np.float32)
    table = vstack(tables, join_type="exact")
    _check_rows(manifest, latents, table)
    return latents, table, dict(attrs, parts=len(names))
