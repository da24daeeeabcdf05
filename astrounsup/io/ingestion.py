"""``ingest``: FITS cutouts into one HDF5 store, resumably, with a table of rejects."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import astropy.units as u
import h5py
import numpy as np
from astropy.table import QTable

from astrounsup._atomic import atomic_path
from astrounsup._checksums import CHECKSUM, row_checksums
from astrounsup._h5write import open_h5_for_writing, raise_if_failed
from astrounsup._locks import output_lock, remove_stale_partials
from astrounsup._progress import progress_bar
from astrounsup.io.discover import discover_cutouts, read_entry
from astrounsup.io.fits import CutoutReadError
from astrounsup.io.hdf5 import (
    MAX_BAD_FRACTION,
    bad_pixel_flags,
    check_bad_fraction,
    count_bad_pixels,
    finish_store,
    init_store,
)

__all__ = ["IngestReport", "ingest", "rejects_path"]

_BATCH = 64  # cutouts written between progress marks


@dataclass(frozen=True)
class IngestReport:
    """What an ingest did.

    Attributes
    ----------
    store : pathlib.Path
    rejects : pathlib.Path
        The ECSV table of rejected cutouts (``entry``, ``object_id``, ``file``, ``reason``).
    n_written, n_rejected : int
    resumed_from : int
        Entries already done by an interrupted earlier run (0 for a fresh run).
    """

    store: Path
    rejects: Path
    n_written: int
    n_rejected: int
    resumed_from: int


def rejects_path(store):
    """The rejects table written beside ``store``: ``<name>.rejects.ecsv``."""
    store = Path(store)
    return store.with_name(store.name.removesuffix(".h5").removesuffix(".hdf5") + ".rejects.ecsv")


def _signature(entries, bands, options):
    h = hashlib.sha256()
    for e in entries:
        h.update("|".join(map(str, e)).encode())
        h.update(b"\n")
    h.update(json.dumps({"bands": list(bands), **options}, sort_keys=True).encode())
    return h.hexdigest()


def ingest(
    source,
    dest,
    *,
    catalog=None,
    bands=None,
    file_column="file",
    id_column=None,
    band_pattern=None,
    compression=None,
    overwrite=False,
    progress=True,
    allow_outside=False,
    max_bad_fraction=MAX_BAD_FRACTION,
):
    """Convert FITS cutouts into one HDF5 cutout store, resumably.

    Every cutout is read, checked (readable, the store's bands and shape, some finite
    pixel, a new object id) and appended to the store, or recorded with its file, object and reason
    in the rejects table beside the store; none is dropped silently. Progress is saved every
    few dozen cutouts: if the run is interrupted, running the same command again continues
    where it stopped, and the store never reads as complete until the end.

    Parameters
    ----------
    source : path, glob, sequence of paths, catalog path, or None
        FITS files (a folder, glob, file or list), or a catalog (CSV, ECSV or FITS table)
        with a ``file_column``. With ``catalog``, the folder that the catalog's relative
        paths start from, or ``None``.
    dest : str or pathlib.Path
        The store to write (``.h5``).
    catalog : path or astropy.table.Table, optional
        A table with a ``file_column`` whose other columns are carried into the store's
        catalog. A relative path in it starts from ``source`` when that is a folder, else
        from the catalog file's folder (the current directory for an in-memory table);
        ``astrounsup ingest SRC DEST --catalog CAT`` follows the same rule. Paths that leave
        that folder (absolute, ``..``) are refused unless ``allow_outside``.
    bands : sequence of str, optional
        Bands to keep, in order (default: those of the first cutout).
    file_column, id_column : str, optional
        The catalog's columns of files and of object ids (default ``object_id`` when
        there, else the file names; a column named here must exist).
    band_pattern : str, optional
        Regular expression grouping per-band files by object (groups ``object_id``, ``band``).
    compression : {None, "gzip", "lzf"}, optional
        Compression of the images (see :mod:`astrounsup.io.hdf5`).
    overwrite : bool, optional
        Start again even if ``dest`` is complete or belongs to another ingest.
    progress : bool, optional
        Show a progress bar (``tqdm.auto``).
    allow_outside : bool, optional
        Read catalog files outside the source folder too.
    max_bad_fraction : float, optional
        Reject a cutout with a band that has more than this fraction of bad (NaN,
        infinite or flagged) pixels, or no good pixel.

    Returns
    -------
    IngestReport

    Raises
    ------
    FileExistsError
        ``dest`` exists from another ingest (other inputs or options) and ``overwrite`` is
        false.
    ValueError
        Nothing could be ingested.
    """
    dest = Path(dest)
    check_bad_fraction(max_bad_fraction)
    with output_lock(dest):  # a second writer of dest is refused, not interleaved
        remove_stale_partials(dest)
        base = None
        if catalog is not None and source is not None:
            if not Path(source).is_dir():
                msg = (
                    f"source must be the folder that the catalog's relative paths start from, "
                    f"or None, when a catalog is given; got {source!r}"
                )
                raise ValueError(msg)
            base = source
        entries, table, bands = discover_cutouts(
            catalog if catalog is not None else source,
            base=base,
            bands=bands,
            file_column=file_column,
            id_column=id_column,
            band_pattern=band_pattern,
            strict=False,
            geometry=False,  # every file's WCS is read with its pixels
            allow_outside=allow_outside,
        )
        options = {"compression": compression, "max_bad_fraction": max_bad_fraction}
        sig = _signature(entries, bands or (), options)
        return _ingest_locked(
            dest, sig, entries, table, bands, compression=compression, overwrite=overwrite,
            progress=progress, max_bad_fraction=max_bad_fraction,
        )  # fmt: skip


def _ingest_locked(
    dest, sig, entries, table, bands, *, compression, overwrite, progress, max_bad_fraction
):
    if dest.exists() and overwrite:
        dest.unlink()
    if dest.exists():
        try:
            with h5py.File(dest, "r") as f:
                complete = bool(f.attrs.get("complete", False))
                same = f.attrs.get("ingest_signature") == sig
                n_done = int(f.attrs.get("n_cutouts", 0))
        except OSError as err:
            msg = f"{dest}: exists but is not a readable HDF5 store ({err}); use overwrite"
            raise FileExistsError(msg) from None
        if complete and same:
            rej = rejects_path(dest)
            n_rej = len(QTable.read(rej)) if rej.exists() else 0
            return IngestReport(dest, rej, n_done, n_rej, len(entries))
        if complete:
            msg = f"{dest}: a complete store from another ingest exists; use overwrite"
            raise FileExistsError(msg)
        if not same:
            msg = (
                f"{dest}: an interrupted ingest of other inputs or options; rerun that "
                "command to resume it, or use overwrite"
            )
            raise FileExistsError(msg)
    kept = "the cutouts ingested so far are kept and the same command resumes"
    if not dest.exists():
        # The store appears only once its empty structure is written, so a run stopped in
        # its first moment leaves nothing that could not be resumed.
        with atomic_path(dest) as tmp, open_h5_for_writing(tmp, "w", name=dest) as f:
            _init_progress(f, sig)
    with open_h5_for_writing(dest, "a", kept=kept) as f:
        done = _rollback(f)
        resumed_from = done
        if "images" in f:  # the first ingested cutout fixed the bands
            bands = tuple(str(b) for b in f.attrs["bands"])
        state = {"bands": bands, "max_bad_fraction": max_bad_fraction}
        ids_seen = {
            str(s.decode() if isinstance(s, bytes) else s): int(e)
            for s, e in zip(f["ingest/object_id"][...], f["ingest/entry"][...], strict=True)
        }
        bar = progress_bar(
            total=len(entries), initial=done, desc="ingesting", unit="cutout", enabled=progress
        )
        batch = []
        with bar:
            for i in range(done, len(entries)):
                batch.append(_check_entry(i, entries[i], table, state, f, ids_seen))
                if len(batch) == _BATCH or i == len(entries) - 1:
                    _commit(f, batch, state["bands"], compression)
                    bar.update(len(batch))
                    batch = []
        rej = _rejects_table(f, entries, table)
        with atomic_path(rejects_path(dest)) as tmp:
            rej.write(tmp, format="ascii.ecsv", overwrite=True)
        nothing = "images" not in f
        n_written = 0
        if not nothing:
            out_table = _store_table(f, table)
            n_written = len(out_table)
            finish_store(
                f, out_table, step="astrounsup.io.ingest", max_bad_fraction=max_bad_fraction
            )
            raise_if_failed(f)  # complete on disk before the progress records go
            del f["ingest"]
    if nothing:
        # An empty store helps no one: keep only the rejects, which say why.
        dest.unlink()
        msg = (
            f"nothing could be ingested from {len(entries)} entries; e.g. "
            f"{list(rej['reason'][:3])}; every reason is in {rejects_path(dest)}"
        )
        raise ValueError(msg)
    return IngestReport(dest, rejects_path(dest), n_written, len(rej), resumed_from)


def _init_progress(f, sig):
    """The attributes and ``/ingest`` group of a new store's progress records."""
    f.attrs["ingest_signature"] = sig
    f.attrs["complete"] = False
    g = f.create_group("ingest")
    g.attrs["done"] = 0
    for name, dt in (
        ("entry", "i8"),
        ("ra", "f8"),
        ("dec", "f8"),
        ("object_id", h5py.string_dtype()),
        ("reject_entry", "i8"),
        ("reject_reason", h5py.string_dtype()),
    ):
        g.create_dataset(name, shape=(0,), maxshape=(None,), dtype=dt, chunks=(1024,))


def _check_entry(i, paths, table, state, f, ids_seen):
    """(i, object_id, cutout or None, reason or None, bad pixels per band or None) for
    entry i.

    ``state["bands"]`` is fixed by the first readable cutout when no bands were asked for.
    """
    oid = str(table["object_id"][i])
    try:
        cutout = read_entry(paths, state["bands"], oid)
    except CutoutReadError as err:
        return i, oid, None, f"object {oid}: {err}", None
    where = ", ".join(str(p) for p in paths if p is not None)
    if state["bands"] is None:
        state["bands"] = cutout.bands
    expected = f["images"].shape[1:] if "images" in f else state.get("shape")
    if expected is not None and cutout.image.shape != expected:
        return (
            i,
            oid,
            None,
            (
                f"{where}: object {oid}: shape {cutout.image.shape} differs from the "
                f"store's {expected}"
            ),
            None,
        )
    unit = cutout.flux_unit or "unknown"
    expected_unit = str(f.attrs["flux_unit"]) if "images" in f else state.setdefault("unit", unit)
    if unit != expected_unit:
        return (
            i,
            oid,
            None,
            f"{where}: object {oid}: pixel unit (BUNIT) {unit!r} differs from the store's "
            f"{expected_unit!r}",
            None,
        )
    counts = count_bad_pixels(cutout.image[None])  # (1, bands), kept for the store
    bad = _too_bad(counts, cutout.image, cutout.bands, state["max_bad_fraction"])
    if bad:
        return i, oid, None, f"{where}: object {oid}: {bad}", None
    if oid in ids_seen:
        return (
            i,
            oid,
            None,
            (
                f"{where}: object {oid}: duplicate object_id (first ingested from "
                f"entry {ids_seen[oid]})"
            ),
            None,
        )
    ids_seen[oid] = i
    state.setdefault("shape", cutout.image.shape)
    return i, oid, cutout, None, counts


def _too_bad(counts, image, bands, max_bad_fraction):
    """Why ``image``, with ``counts`` bad pixels per band, is too damaged to keep (a band
    without a good pixel, or with more than ``max_bad_fraction`` bad), or ``None``."""
    frac, _ = bad_pixel_flags(counts, int(np.prod(image.shape[1:])))
    for band, f in zip(bands, frac[0], strict=True):
        if f >= 1.0:
            return f"band {band} has no good pixel (all NaN, infinite or flagged)"
        if f > max_bad_fraction:
            return (
                f"band {band} has {100 * f:.2f}% bad pixels (NaN, infinite or flagged), more "
                f"than max_bad_fraction {max_bad_fraction}"
            )
    return None


def _grow(ds, values):
    n = ds.shape[0]
    ds.resize((n + len(values), *ds.shape[1:]))
    ds[n:] = values


def _commit(f, batch, bands, compression):
    """Append a batch; the progress mark moves only after the data is written."""
    good = [(i, oid, c, n) for i, oid, c, _, n in batch if c is not None]
    if good and "images" not in f:
        first = good[0][2]
        init_store(
            f,
            cutout_shape=first.image.shape,
            bands=bands,
            pixel_scale=first.pixel_scale,
            flux_unit=first.flux_unit or "unknown",
            compression=compression,
        )
    g = f["ingest"]
    if good:
        images = np.stack([c.image for _, _, c, _ in good]).astype(np.float32, copy=False)
        _add_checksums(f)
        _grow(f["images"], images)
        _grow(f["bad_pixels"], np.concatenate([n for *_, n in good]))
        _grow(f["checksums"], row_checksums(images))
        _grow(g["ra"], [c.ra for _, _, c, _ in good])
        _grow(g["dec"], [c.dec for _, _, c, _ in good])
        _grow(g["object_id"], [oid for _, oid, _, _ in good])
        _grow(g["entry"], [i for i, *_ in good])
    bad = [(i, reason) for i, _, c, reason, _ in batch if c is None]
    if bad:
        _grow(g["reject_entry"], [i for i, _ in bad])
        _grow(g["reject_reason"], [r for _, r in bad])
    raise_if_failed(f)  # the batch is on disk before the mark that says so
    g.attrs["done"] = batch[-1][0] + 1
    raise_if_failed(f)


def _add_checksums(f):
    """Give a store begun before format version 3 the checksums of its cutouts so far."""
    if "checksums" in f:
        return
    images = f["images"]
    f.create_dataset(
        "checksums", shape=(0,), maxshape=(None,), dtype="u8", chunks=(images.chunks[0] * 4,)
    )
    f.attrs["checksum"] = CHECKSUM
    for lo in range(0, images.shape[0], images.chunks[0]):
        _grow(f["checksums"], row_checksums(images[lo : lo + images.chunks[0]]))


def _rollback(f):
    """Drop rows written after the last progress mark; return the entries done."""
    g = f["ingest"]
    done = int(g.attrs["done"])
    keep = int(np.sum(g["entry"][...] < done))
    for name in ("entry", "ra", "dec", "object_id"):
        g[name].resize((keep,))
    if "images" in f:
        f["images"].resize((keep, *f["images"].shape[1:]))
        f["bad_pixels"].resize((keep, *f["bad_pixels"].shape[1:]))
        if "checksums" in f:
            f["checksums"].resize((keep,))
    keep_rej = int(np.sum(g["reject_entry"][...] < done))
    for name in ("reject_entry", "reject_reason"):
        g[name].resize((keep_rej,))
    return done


def _store_table(f, table):
    g = f["ingest"]
    rows = g["entry"][...]
    out = QTable(table[rows])
    ra, dec = g["ra"][...], g["dec"][...]
    # The catalog's coordinates win; the WCS fills what it lacks.
    for col, values in (("ra", ra), ("dec", dec)):
        have = (
            u.Quantity(out[col], u.deg).value
            if col in out.colnames
            else np.full(len(rows), np.nan)
        )
        out[col] = np.where(np.isfinite(have), have, values) * u.deg
    return out


def _rejects_table(f, entries, table):
    g = f["ingest"]
    idx = g["reject_entry"][...]
    reasons = [r.decode() if isinstance(r, bytes) else str(r) for r in g["reject_reason"][...]]
    t = QTable()
    t["entry"] = idx.astype(np.int64)
    t["object_id"] = np.array([str(table["object_id"][i]) for i in idx], dtype=str)
    t["file"] = np.array([",".join(map(str, entries[i])) for i in idx], dtype=str)
    t["reason"] = np.array(reasons, dtype=str)
    return t
