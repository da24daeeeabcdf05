"""A survey as many cutout stores: a folder of shards, read as one.

A sharded store is a folder of HDF5 cutout stores (:mod:`astrounsup.io.hdf5`) of the same
bands, cutout shape, pixel scale and flux unit, read in order as if they were one store:
row ``i`` of the whole is row ``i - offset`` of the shard that holds it. ``astrounsup
ingest --shard-size N`` writes one (``shard-00000.h5``, ``shard-00001.h5``, ...) with a
manifest, ``shards.json``, which makes the folder a sharded store::

    {"format": "astrounsup.shards", "format_version": 1,
     "bands": ["g", "r", "i"], "cutout_shape": [3, 64, 64], "pixel_scale": 0.168,
     "flux_unit": "nJy", "n_cutouts": 2000,
     "shards": [{"path": "shard-00000.h5", "n_cutouts": 1000}, ...]}

``path`` is relative to the manifest's folder. A hand-written manifest needs only
``shards`` (a list of paths, or of objects with ``path``); :func:`write_manifest` writes
one for stores made otherwise. A list of store paths is read as a sharded store too.
Object ids are unique across shards.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from astrounsup._atomic import atomic_path
from astrounsup.io.hdf5 import (
    StoreError,
    open_store,
    read_store_file,
    read_table,
    store_file_info,
    verify_store_file,
)

__all__ = [
    "MANIFEST",
    "SHARDS_FORMAT",
    "is_sharded",
    "shard_name",
    "shard_paths",
    "write_manifest",
]

#: The manifest of a folder of shards.
MANIFEST = "shards.json"
#: The ``format`` of a manifest.
SHARDS_FORMAT = "astrounsup.shards"
_VERSION = 1
_STORE_SUFFIXES = (".h5", ".hdf5")


def shard_name(k):
    """The file name of shard ``k`` (from 0) that ``ingest`` writes: ``shard-00000.h5``."""
    return f"shard-{k:05d}.h5"


def is_sharded(source):
    """Whether ``source`` names a sharded store: a manifest (``*.json``), a folder with a
    manifest (``shards.json``), or a list of ``.h5`` paths.

    Examples
    --------
    >>> is_sharded("survey.h5"), is_sharded(["a.h5", "b.h5"])
    (False, True)
    """
    if isinstance(source, (list, tuple)):
        return bool(source) and all(_is_store_name(p) for p in source)
    if not isinstance(source, (str, os.PathLike)):
        return False
    path = Path(source)
    if path.suffix.lower() == ".json":
        return True
    return path.is_dir() and (path / MANIFEST).is_file()


def _is_store_name(path):
    return isinstance(path, (str, os.PathLike)) and str(path).lower().endswith(_STORE_SUFFIXES)


def shard_paths(source):
    """The shards of a sharded store, in order, and what its manifest expects of each.

    Parameters
    ----------
    source : path or sequence of paths
        A manifest, a folder with one, or a list of stores.

    Returns
    -------
    paths : list of pathlib.Path
    expected : list of dict
        Per shard, what the manifest records (``n_cutouts``), empty without one.

    Raises
    ------
    StoreError
        A manifest that cannot be read or names a shard that is missing, or no shard
        (the message names the manifest or folder and the shard).
    """
    if isinstance(source, (list, tuple)):
        paths, expected = [Path(p) for p in source], [{} for _ in source]
        where = "the list of shards"
    else:
        path = Path(source)
        manifest = path / MANIFEST if path.is_dir() else path
        where = str(manifest)
        paths, expected = _read_manifest(manifest)
    if not paths:
        msg = f"{where}: names no shard"
        raise StoreError(msg)
    for p in paths:
        if not p.is_file():
            msg = f"{where}: shard {p} is missing (restore it, or ingest its cutouts again)"
            raise StoreError(msg)
    return paths, expected


def _read_manifest(manifest):
    try:
        record = json.loads(manifest.read_text())
    except FileNotFoundError:
        msg = f"{manifest}: no such manifest of shards"
        raise StoreError(msg) from None
    except (OSError, ValueError) as err:
        msg = f"{manifest}: not a readable manifest of shards ({err})"
        raise StoreError(msg) from None
    shards = record.get("shards") if isinstance(record, dict) else None
    if not isinstance(shards, list):
        msg = f"{manifest}: a manifest of shards needs a list 'shards' of store paths"
        raise StoreError(msg)
    if record.get("format", SHARDS_FORMAT) != SHARDS_FORMAT:
        msg = f"{manifest}: format {record.get('format')!r} is not {SHARDS_FORMAT!r}"
        raise StoreError(msg)
    paths, expected = [], []
    for item in shards:
        name = item.get("path") if isinstance(item, dict) else item
        if not isinstance(name, str):
            msg = f"{manifest}: each shard is a path or an object with 'path'; got {item!r}"
            raise StoreError(msg)
        paths.append(manifest.parent / name)
        expected.append(item if isinstance(item, dict) else {})
    return paths, expected


def check_shards(paths, expected, infos):
    """Raise :class:`StoreError` unless the shards agree with each other and the manifest.

    ``infos`` holds, per shard, ``bands``, ``shape`` (of the images), ``pixel_scale``,
    ``flux_unit`` and ``object_id`` (its ids).
    """
    first = infos[0]
    for p, want, info in zip(paths, expected, infos, strict=True):
        n = info["shape"][0]
        if "n_cutouts" in want and int(want["n_cutouts"]) != n:
            msg = (
                f"{p}: holds {n} cutouts where the manifest records {want['n_cutouts']}: "
                "the shard was replaced after the manifest was written"
            )
            raise StoreError(msg)
        for key, what in (
            ("bands", "bands"),
            ("cutout_shape", "cutout shape (bands, ny, nx)"),
            ("flux_unit", "flux unit"),
        ):
            value = info["shape"][1:] if key == "cutout_shape" else info[key]
            other = first["shape"][1:] if key == "cutout_shape" else first[key]
            if tuple(np.atleast_1d(value)) != tuple(np.atleast_1d(other)):
                msg = (
                    f"{p}: {what} {_text(value)} differ from {paths[0]}'s {_text(other)}; "
                    "the shards of one survey have the same"
                )
                raise StoreError(msg)
        a, b = info["pixel_scale"], first["pixel_scale"]
        if not (a == b or (np.isnan(a) and np.isnan(b))):
            msg = f"{p}: pixel scale {a:.6g} arcsec differs from {paths[0]}'s {b:.6g}"
            raise StoreError(msg)
    seen = {}
    for p, info in zip(paths, infos, strict=True):
        for oid in info["object_id"]:
            if oid in seen:
                msg = f"{p}: object_id {oid} is also in {seen[oid]}; ids are unique across shards"
                raise StoreError(msg)
            seen[oid] = p


def _text(value):
    if isinstance(value, (tuple, list, np.ndarray)):
        return "(" + ", ".join(str(v) for v in value) + ")"
    return repr(value)


def shard_summary(path):
    """What :func:`check_shards` and the manifest need of one store."""
    with open_store(path) as f:
        return {
            "bands": tuple(str(b) for b in f.attrs["bands"]),
            "shape": tuple(int(v) for v in f["images"].shape),
            "pixel_scale": float(f.attrs["pixel_scale"]),
            "flux_unit": str(f.attrs.get("flux_unit", "unknown")),
            "object_id": [str(v) for v in read_table(f)["object_id"]],
        }


def write_manifest(folder, shards):
    """Write ``folder/shards.json`` listing the stores ``shards`` in order (atomically).

    Parameters
    ----------
    folder : str or pathlib.Path
    shards : sequence of path
        Complete stores inside ``folder``, of the same bands and cutout shape.

    Returns
    -------
    pathlib.Path
        The manifest.

    Raises
    ------
    StoreError
        The stores do not agree (bands, cutout shape, pixel scale, flux unit, repeated ids).
    """
    folder = Path(folder)
    paths = [Path(p) for p in shards]
    infos = [shard_summary(p) for p in paths]
    check_shards(paths, [{} for _ in paths], infos)
    first = infos[0]
    record = {
        "format": SHARDS_FORMAT,
        "format_version": _VERSION,
        "bands": list(first["bands"]),
        "cutout_shape": list(first["shape"][1:]),
        "pixel_scale": first["pixel_scale"],
        "flux_unit": first["flux_unit"],
        "n_cutouts": sum(i["shape"][0] for i in infos),
        "shards": [
            {"path": os.path.relpath(p, folder), "n_cutouts": i["shape"][0]}
            for p, i in zip(paths, infos, strict=True)
        ],
    }
    with atomic_path(folder / MANIFEST) as tmp:
        tmp.write_text(json.dumps(record, indent=1) + "\n")
    return folder / MANIFEST


def shards_info(source):
    """:func:`astrounsup.io.store_info` of a sharded store: the whole's description, with
    ``shards``, the :func:`~astrounsup.io.store_info` of each shard in order."""
    paths, expected = shard_paths(source)
    infos = [store_file_info(p) for p in paths]
    summaries = [shard_summary(p) for p in paths]
    check_shards(paths, expected, summaries)
    first = infos[0]
    n = sum(i["shape"][0] for i in infos)
    return {
        "path": str(source) if not isinstance(source, (list, tuple)) else "the list of shards",
        "format": SHARDS_FORMAT,
        "format_version": _VERSION,
        "complete": True,
        "shape": (n, *first["shape"][1:]),
        "bands": first["bands"],
        "pixel_scale": first["pixel_scale"],
        "flux_unit": first["flux_unit"],
        "columns": first["columns"],
        "has_masks": any(i["has_masks"] for i in infos),
        "has_checksums": all(i["has_checksums"] for i in infos),
        "checksum": first.get("checksum"),
        "size_bytes": sum(i["size_bytes"] for i in infos),
        "shards": infos,
    }


def verify_shards(source):
    """:func:`astrounsup.io.verify_store` of every shard: the damaged rows of the whole."""
    paths, expected = shard_paths(source)
    summaries = [shard_summary(p) for p in paths]
    check_shards(paths, expected, summaries)
    offsets = np.cumsum([0] + [s["shape"][0] for s in summaries[:-1]])
    bad = [offset + verify_store_file(p) for p, offset in zip(paths, offsets, strict=True)]
    return np.concatenate(bad).astype(np.int64)


def read_shards(source):
    """:func:`astrounsup.io.read_store` of a sharded store: every shard, concatenated."""
    from astropy.table import vstack

    paths, expected = shard_paths(source)
    check_shards(paths, expected, [shard_summary(p) for p in paths])
    parts = [read_store_file(p) for p in paths]
    attrs = dict(parts[0][2], n_cutouts=sum(len(t) for _, t, _ in parts))
    images = np.concatenate([i for i, _, _ in parts])
    return images, vstack([t for _, t, _ in parts], join_type="exact"), attrs
