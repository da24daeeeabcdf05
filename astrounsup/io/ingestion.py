"""``ingest``: FITS cutouts into one HDF5 store, resumably, with a table of rejects."""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import astropy.units as u
import h5py
import numpy as np
from astropy.table import QTable, vstack

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
    read_table,
)
from astrounsup.io.shards import MANIFEST, shard_name, write_manifest

__all__ = ["IngestReport", "ingest", "rejects_path"]

# Entries checked between progress marks; None: one chunk of the store's images (64 until
# the first is written), so that every chunk is written whole, once, and never read back.
_BATCH = None
_WORKER_CHUNK = 16  # entries a worker process reads per task
_RECORD = "ingest.json"  # in a folder of shards: which ingest writes it


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
    shards : tuple of pathlib.Path
        The shards written, in order, when ``store`` is a folder of shards (else empty).
    """

    store: Path
    rejects: Path
    n_written: int
    n_rejected: int
    resumed_from: int
    shards: tuple = ()


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
    workers=1,
    shard_size=None,
):
    """Convert FITS cutouts into one HDF5 cutout store, or a folder of store shards,
    resumably.

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
        The store to write (``.h5``); with ``shard_size``, the folder of shards.
    catalog : path or astropy.table.Table, optional
        A table with a ``file_column`` whose other columns are carried into the store's
        catalog. A relative path in it starts from ``source`` when that is a folder (or,
        for a file not there, from the catalog file's folder when the file is there), else
        from the catalog file's folder (the current directory for an in-memory table);
        ``astrounsup ingest SRC DEST --catalog CAT`` follows the same rule. Paths that leave
        that folder (absolute, ``..``) are refused unless ``allow_outside``.
    bands : sequence of str, optional
        Bands to keep, in order (default: those most entries share). The cutout shape and
        flux unit are also those most entries share (all of them, or 101 spread evenly,
        read first); the others are rejected with their reason, and with no kind shared
        by more than half a ValueError names each kind's count.
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
    workers : int, optional
        Processes that parse the FITS files (1: this process only). The store is the same
        whatever the number: cutouts are checked and written in entry order by this
        process.
    shard_size : int, optional
        Write ``dest`` as a folder of stores (:mod:`astrounsup.io.shards`):
        ``shard-00000.h5`` holds the first ``shard_size`` entries' cutouts, the next shard
        the next entries, and so on; each shard has its rejects table, ``rejects.ecsv``
        holds them all and ``shards.json`` lists the shards once every one is complete.
        Each shard resumes on its own; object ids are unique across all of them.

    Returns
    -------
    IngestReport

    Raises
    ------
    FileExistsError
        ``dest`` exists from another ingest (other inputs or options) and ``overwrite`` is
        false.
    ValueError
        Nothing could be ingested, or an option is out of range (named).
    """
    dest = Path(dest)
    check_bad_fraction(max_bad_fraction)
    workers = _positive_int("workers", workers)
    if shard_size is not None:
        shard_size = _positive_int("shard_size", shard_size)
        if dest.suffix.lower() in (".h5", ".hdf5") or dest.is_file():
            msg = (
                f"dest: with shard_size, the folder to write the shards into (e.g. "
                f"{dest.with_suffix('')}); got the file name {dest}"
            )
            raise ValueError(msg)
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
        run = _Run(entries, table, bands, compression, max_bad_fraction, workers, progress)
        _fix_by_majority(run, catalog if catalog is not None else source)
        try:
            if shard_size is not None:
                return _ingest_shards(dest, sig, run, shard_size=shard_size, overwrite=overwrite)
            with run.bar(0):
                report = _ingest_locked(dest, sig, run, 0, len(entries), overwrite=overwrite)
        finally:
            run.close()
        if report.n_written == 0:
            rej = QTable.read(rejects_path(dest))
            msg = (
                f"nothing could be ingested from {len(entries)} entries; e.g. "
                f"{[str(r) for r in rej['reason'][:3]]}; every reason is in {rejects_path(dest)}"
            )
            raise ValueError(msg)
        return report


#: Entries read before ingesting to find the bands, shape and unit most of them share.
_SAMPLE = 101


def _fix_by_majority(run, source):
    """Fix the bands, cutout shape and flux unit of ``run`` to those most of its entries
    share (all of them, or :data:`_SAMPLE` spread evenly), so that one odd file sorting
    first does not decide them; with no kind shared by more than half of those read, a
    ValueError names the count of each."""
    n = len(run.entries)
    if n == 0:
        return
    rows = np.unique(np.linspace(0, n - 1, min(n, _SAMPLE)).round().astype(int))
    kinds = collections.Counter()
    for i in rows:
        cutout, _ = _read_one(run.entries[i], run.bands, str(run.table["object_id"][i]))
        if cutout is not None:
            kinds[(tuple(cutout.bands), cutout.image.shape, cutout.flux_unit or "unknown")] += 1
    if not kinds:
        return  # nothing readable: each entry is rejected with its reason
    (bands, shape, unit), count = kinds.most_common(1)[0]
    read = sum(kinds.values())
    if len(kinds) > 1 and 2 * count <= read:
        described = "; ".join(
            f"{c} with bands {','.join(b)}, shape {'x'.join(map(str, sh))}, unit {un}"
            for (b, sh, un), c in kinds.most_common()
        )
        msg = (
            f"{source}: the cutouts differ and no kind is a majority ({described}; of "
            f"{read} read); ingest each kind into its own store, or choose bands"
        )
        raise ValueError(msg)
    run.bands = bands
    run.fixed.update(shape=shape, unit=unit)


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        msg = f"{name} must be a positive integer; got {value!r}"
        raise ValueError(msg)
    return int(value)


class _Run:
    """What every store of one ingest shares: the entries, options, the bands, cutout
    shape and unit fixed by the majority of the entries (:func:`_fix_by_majority`) or by
    the store's cutouts so far, the object ids seen so far (id ->
    entry) and the progress bar."""

    def __init__(self, entries, table, bands, compression, max_bad_fraction, workers, progress):
        self.entries, self.table, self.bands = entries, table, bands
        self.compression, self.max_bad_fraction = compression, max_bad_fraction
        self.workers, self.progress = workers, progress
        self.ids_seen = {}
        self.fixed = {}  # the cutout "shape" and flux "unit" most entries share
        self._bar = None
        self._pool = None

    def pool(self):
        """The worker processes, started on first use and kept for every store of the run."""
        if self._pool is None:
            import concurrent.futures
            import multiprocessing

            # Forked workers start at once and need no importable __main__ (a script
            # without a main guard, a notebook); they only parse FITS files and leave
            # through os._exit, so the store this process has open is never touched by
            # them. Elsewhere, spawned ones.
            fork = "fork" in multiprocessing.get_all_start_methods() and sys.platform != "darwin"
            context = multiprocessing.get_context("fork" if fork else "spawn")
            self._pool = concurrent.futures.ProcessPoolExecutor(self.workers, mp_context=context)
        return self._pool

    def close(self):
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    @contextlib.contextmanager
    def bar(self, initial):
        self._bar = progress_bar(
            total=len(self.entries), initial=initial, desc="ingesting", unit="cutout",
            enabled=self.progress,
        )  # fmt: skip
        with self._bar:
            yield

    def advance(self, n):
        self._bar.update(n)


def _ingest_locked(dest, sig, run, lo, hi, *, overwrite):
    """Ingest entries ``lo`` to ``hi - 1`` of ``run`` into the store ``dest``.

    Returns the report; when every entry was rejected, ``n_written`` is 0 and only the
    rejects table is left, no store.
    """
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
            rejected = QTable.read(rej) if rej.exists() else QTable({"entry": []})
            _note_done(run, dest, lo, hi, rejected)
            run.advance(hi - lo)
            return IngestReport(dest, rej, n_done, len(rejected), hi - lo)
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
            _init_progress(f, sig, lo)
    with open_h5_for_writing(dest, "a", kept=kept) as f:
        done = _rollback(f)
        resumed_from = done - lo
        if "images" in f:  # the first ingested cutout fixed the bands, shape and unit
            run.bands = tuple(str(b) for b in f.attrs["bands"])
            run.fixed.update(shape=f["images"].shape[1:], unit=str(f.attrs["flux_unit"]))
        # What the first cutout fixed (in an earlier shard, maybe) holds for every shard.
        state = {"bands": run.bands, "max_bad_fraction": run.max_bad_fraction, **run.fixed}
        ids_seen = run.ids_seen
        ids_seen.update(
            (str(s.decode() if isinstance(s, bytes) else s), int(e))
            for s, e in zip(f["ingest/object_id"][...], f["ingest/entry"][...], strict=True)
        )
        run.advance(done - lo)
        batch = []
        entries, table = run.entries, run.table
        size = _BATCH or _chunk_rows(f)
        for i, read in _read_entries(entries, table, done, hi, state, run):
            batch.append(_check_entry(i, read, entries[i], table, state, ids_seen))
            if len(batch) >= size or i == hi - 1:
                _commit(f, batch, state["bands"], run.compression)
                run.advance(len(batch))
                batch = []
                size = _BATCH or _chunk_rows(f)
        run.bands = state["bands"]
        run.fixed.update((k, state[k]) for k in ("shape", "unit") if k in state)
        rej = _rejects_table(f, entries, table)
        with atomic_path(rejects_path(dest)) as tmp:
            rej.write(tmp, format="ascii.ecsv", overwrite=True)
        nothing = "images" not in f
        n_written = 0
        if not nothing:
            out_table = _store_table(f, table)
            n_written = len(out_table)
            finish_store(
                f, out_table, step="astrounsup.io.ingest", max_bad_fraction=run.max_bad_fraction
            )
            raise_if_failed(f)  # complete on disk before the progress records go
            del f["ingest"]
    if nothing:
        # An empty store helps no one: keep only the rejects, which say why.
        dest.unlink()
    return IngestReport(dest, rejects_path(dest), n_written, len(rej), resumed_from)


def _note_done(run, dest, lo, hi, rejected):
    """Record the object ids (and bands) of the complete store ``dest`` of entries ``lo``
    to ``hi - 1``, so later stores of the run refuse its ids again."""
    with h5py.File(dest, "r") as f:
        ids = [str(v) for v in read_table(f)["object_id"]]
        run.bands = tuple(str(b) for b in f.attrs["bands"])
        run.fixed.update(shape=f["images"].shape[1:], unit=str(f.attrs["flux_unit"]))
    # The catalog keeps the accepted entries in order: all of the range but the rejects.
    accepted = np.setdiff1d(np.arange(lo, hi), np.asarray(rejected["entry"], dtype=np.int64))
    run.ids_seen.update(zip(ids, accepted.tolist(), strict=True))


def _ingest_shards(dest, sig, run, *, shard_size, overwrite):
    """Ingest ``run`` into the folder ``dest`` as shards of ``shard_size`` entries each."""
    n = len(run.entries)
    record = dest / _RECORD
    sig = hashlib.sha256(f"{sig}|shards of {shard_size}".encode()).hexdigest()
    if overwrite and dest.is_dir():
        _remove_shards(dest)
    if record.exists():
        if json.loads(record.read_text()).get("ingest_signature") != sig:
            msg = (
                f"{dest}: shards of another ingest (other inputs, options or shard size); "
                "rerun that command to resume it, or use overwrite"
            )
            raise FileExistsError(msg)
    elif dest.is_dir() and any(not p.name.startswith(".") for p in dest.iterdir()):
        msg = f"{dest}: a folder holding other files; name a new or empty folder for the shards"
        raise FileExistsError(msg)
    else:
        dest.mkdir(parents=True, exist_ok=True)
        with atomic_path(record) as tmp:
            tmp.write_text(json.dumps({"ingest_signature": sig, "shard_size": shard_size}))
    reports, rejects, resumed = [], [], 0
    with run.bar(0):
        for k, lo in enumerate(range(0, n, shard_size)):
            hi = min(n, lo + shard_size)
            path = dest / shard_name(k)
            with output_lock(path):
                remove_stale_partials(path)
                if not path.exists() and rejects_path(path).exists():  # done, nothing kept
                    run.advance(hi - lo)
                    resumed += hi - lo
                else:
                    report = _ingest_locked(path, f"{sig}|{k}", run, lo, hi, overwrite=False)
                    resumed += report.resumed_from
                    if report.n_written:
                        reports.append(report)
                rejected = QTable.read(rejects_path(path))
            rejects.append(rejected)
    rej = vstack(rejects) if rejects else QTable()
    with atomic_path(dest / "rejects.ecsv") as tmp:
        rej.write(tmp, format="ascii.ecsv", overwrite=True)
    if not reports:
        reasons = [str(r) for r in rej["reason"][:3]]
        msg = (
            f"nothing could be ingested from {n} entries; e.g. {reasons}; "
            f"every reason is in {dest / 'rejects.ecsv'}"
        )
        raise ValueError(msg)
    shards = [r.store for r in reports]
    write_manifest(dest, shards)
    return IngestReport(
        dest, dest / "rejects.ecsv", sum(r.n_written for r in reports), len(rej), resumed,
        tuple(shards),
    )  # fmt: skip


def _remove_shards(dest):
    """Remove what an ingest into shards wrote in ``dest`` (and nothing else)."""
    for pattern in (_RECORD, MANIFEST, "rejects.ecsv", "shard-*.h5", "shard-*.rejects.ecsv"):
        for p in dest.glob(pattern):
            p.unlink()


def _chunk_rows(f):
    return f["images"].chunks[0] if "images" in f else 64


def _init_progress(f, sig, lo):
    """The attributes and ``/ingest`` group of a new store's progress records (its first
    entry is ``lo``)."""
    f.attrs["ingest_signature"] = sig
    f.attrs["complete"] = False
    g = f.create_group("ingest")
    g.attrs["done"] = lo
    for name, dt in (
        ("entry", "i8"),
        ("ra", "f8"),
        ("dec", "f8"),
        ("object_id", h5py.string_dtype()),
        ("reject_entry", "i8"),
        ("reject_reason", h5py.string_dtype()),
    ):
        g.create_dataset(name, shape=(0,), maxshape=(None,), dtype=dt, chunks=(1024,))


def _read_one(paths, bands, oid):
    """Entry ``paths`` read as a cutout, or the reason it cannot be: ``(cutout, None)`` or
    ``(None, reason)``."""
    try:
        return read_entry(paths, bands, oid), None
    except CutoutReadError as err:
        return None, f"object {oid}: {err}"


def _read_chunk(jobs, bands):
    """:func:`_read_one` of each ``(paths, object_id)`` of ``jobs`` (in a worker process)."""
    return [_read_one(paths, bands, oid) for paths, oid in jobs]


def _read_entries(entries, table, lo, hi, state, run):
    """Yield ``(i, (cutout, reason))`` for entries ``lo`` to ``hi - 1``, in that order.

    With ``run.workers > 1`` the FITS files are parsed in the run's worker processes, a
    few chunks ahead of the consumer (bounded memory); entries are read in-process until
    the bands are known (``state["bands"]``, fixed by the first readable cutout when no
    bands were asked for), so every cutout is read with the same bands as in one process.
    """
    i = lo
    while i < hi and (run.workers <= 1 or state["bands"] is None):
        yield i, _read_one(entries[i], state["bands"], str(table["object_id"][i]))
        i += 1
    if i >= hi:
        return
    pool, chunk = run.pool(), _WORKER_CHUNK
    starts = iter(range(i, hi, chunk))
    pending = collections.deque()
    try:
        while True:
            while len(pending) < 4 * run.workers and (start := next(starts, None)) is not None:
                stop = min(hi, start + chunk)
                jobs = [(entries[j], str(table["object_id"][j])) for j in range(start, stop)]
                pending.append((start, pool.submit(_read_chunk, jobs, state["bands"])))
            if not pending:
                return
            start, future = pending.popleft()
            for k, result in enumerate(future.result()):
                yield start + k, result
    finally:
        for _, future in pending:
            future.cancel()


def _check_entry(i, read, paths, table, state, ids_seen):
    """(i, object_id, cutout or None, reason or None, bad pixels per band or None) for
    entry i, read as ``read`` (:func:`_read_one`).

    ``state["bands"]``, ``state["unit"]`` and ``state["shape"]`` are those most entries
    share (or the store's so far); where they are not set yet (no entry of the sample was
    readable) the first readable cutout, of the right shape, and kept sets them.
    """
    oid = str(table["object_id"][i])
    cutout, reason = read
    if cutout is None:
        return i, oid, None, reason, None
    where = ", ".join(str(p) for p in paths if p is not None)
    if state["bands"] is None:
        state["bands"] = cutout.bands
    expected = state.get("shape")
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
    expected_unit = state.setdefault("unit", unit)
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
