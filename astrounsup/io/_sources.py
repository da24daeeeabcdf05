"""The sources a :class:`astrounsup.io.CutoutDataset` reads from: a store, shards of one, an
array, FITS files."""

from __future__ import annotations

import os
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.table import QTable, TableMergeError, vstack

from astrounsup._checksums import row_checksums
from astrounsup._estimators import check_pixel_scale
from astrounsup.io._rawchunks import _RawChunkReader
from astrounsup.io.discover import read_entry
from astrounsup.io.fits import CutoutReadError
from astrounsup.io.hdf5 import StoreError, damaged_message, open_store, read_checked, read_table
from astrounsup.io.shards import check_shards, shard_paths


class _StoreSource:
    """Lazy reader of an HDF5 store: one open file per process, row runs read as slices.

    Each process checks a cutout's pixels against its checksum the first time it reads
    it, and checks every cutout again after the file changes on disk (its size or
    modification time): a second pass over every batch's bytes would cost as much as
    reading them, and what was checked cannot change unless the file is written.
    """

    def __init__(self, path):
        self.path = Path(path)
        try:
            with open_store(self.path) as f:
                self.table = read_table(f)
                self.bands = tuple(str(b) for b in f.attrs["bands"])
                self.pixel_scale = float(f.attrs["pixel_scale"])
                self.flux_unit = str(f.attrs.get("flux_unit", "unknown"))
                self.shape = f["images"].shape
                self.has_masks = "masks" in f
                # Counted once when the store was written: clean cutouts need no pixel check.
                # (A store without the counts is checked pixel by pixel.)
                bad = read_checked(f, "bad_pixels") if "bad_pixels" in f else None
                self.bad_pixels = None if bad is None else bad.reshape(len(bad), -1).sum(axis=1)
                # Reads are checked against these (a store before format 3 has none).
                self.checksums = read_checked(f, "checksums") if "checksums" in f else None
                self._raw = (
                    _RawChunkReader(f["images"]) if _RawChunkReader.usable(f["images"]) else None
                )
        except (FileNotFoundError, PermissionError):
            raise
        except (OSError, RuntimeError) as err:  # h5py's errors of a damaged file's structure
            msg = (
                f"{self.path}: a damaged store: its structure cannot be read ({err}); "
                "restore the file or write the store again"
            )
            raise StoreError(msg) from None
        self._file = None
        self._fd = None
        self._pid = None
        self._checked = None  # per process: rows whose checksum this process verified
        self._stamp = None

    def __getstate__(self):
        state = self.__dict__.copy()
        # Open files do not cross processes; each process opens and checks its own.
        state.update(_file=None, _fd=None, _pid=None, _checked=None, _stamp=None)
        return state

    def _handle(self):
        if self._file is None or self._pid != os.getpid():
            self._file = open_store(self.path)
            self._fd = os.open(self.path, os.O_RDONLY)
            self._pid = os.getpid()
            self._checked = np.zeros(self.shape[0], dtype=bool)
            self._stamp = _stamp(self._fd)
        return self._file

    def _verify(self, indices, images):
        """Check the rows of ``indices`` not yet checked by this process (all of them again
        once the file has changed) against their checksums."""
        stamp = _stamp(self._fd)  # after the read: a write during it shows here
        if stamp != self._stamp:
            self._checked[:] = False
            self._stamp = stamp
        todo = np.nonzero(~self._checked[indices])[0]
        if todo.size == 0:
            return
        bad = todo[row_checksums(images, todo) != self.checksums[indices[todo]]]
        if bad.size:
            raise StoreError(damaged_message(self.path, np.unique(indices[bad]), self.table))
        self._checked[indices[todo]] = True

    def __del__(self, _getpid=os.getpid, _close=os.close):
        # The os functions are bound now: at interpreter exit the module may be gone.
        if getattr(self, "_fd", None) is not None and self._pid == _getpid():
            _close(self._fd)

    def __len__(self):
        return self.shape[0]

    def _read_run(self, f, lo, hi, images, flags, pos):
        try:
            if self._raw is not None:
                self._raw.read(self._fd, lo, hi, images[pos : pos + hi - lo])
            else:
                f["images"].read_direct(images, np.s_[lo:hi], np.s_[pos : pos + hi - lo])
            if flags is not None:
                f["masks"].read_direct(flags, np.s_[lo:hi], np.s_[pos : pos + hi - lo])
        except (OSError, ValueError, RuntimeError) as err:
            msg = f"{self.path}: cutouts {lo} to {hi - 1} cannot be read ({err})"
            raise StoreError(msg) from err

    def read(self, indices, out=None):
        """Images (and flags) of ``indices`` in that order; ``out`` receives the images.

        Indices are visited in file order and grouped into runs of consecutive rows, each
        read with one call straight into its place in the output (a sequential batch is a
        single run; a shuffled one, single rows). The pixels read are checked against
        their checksums: a damaged cutout raises :class:`StoreError` naming it.
        """
        f = self._handle()
        indices = np.asarray(indices)
        shape = (indices.size, *self.shape[1:])
        images = out if out is not None else np.empty(shape, dtype=np.float32)
        flags = np.zeros(shape, dtype=bool) if self.has_masks else None
        order = np.argsort(indices, kind="stable")
        rows = indices[order]
        # A run continues while both the file row and the output position step by one.
        step = (np.diff(rows) == 1) & (np.diff(order) == 1)
        starts = np.concatenate([[0], np.nonzero(~step)[0] + 1]).tolist()
        stops = [*starts[1:], rows.size]
        for a, b in zip(starts, stops, strict=True):
            lo, hi, pos = int(rows[a]), int(rows[b - 1]) + 1, int(order[a])
            self._read_run(f, lo, hi, images, flags, pos)
        if self.checksums is not None:
            self._verify(indices, images)
        maybe_bad = None if self.bad_pixels is None else self.bad_pixels[indices] > 0
        return images, flags, maybe_bad


class _ShardedSource:
    """Stores read as one, in order (:mod:`astrounsup.io.shards`); each shard is read
    lazily by its own :class:`_StoreSource`."""

    def __init__(self, source):
        paths, expected = shard_paths(source)
        self.shards = [_StoreSource(p) for p in paths]
        check_shards(
            paths,
            expected,
            [
                {
                    "bands": s.bands,
                    "shape": s.shape,
                    "pixel_scale": s.pixel_scale,
                    "flux_unit": s.flux_unit,
                    "object_id": [str(v) for v in s.table["object_id"]],
                }
                for s in self.shards
            ],
        )
        self.paths = paths
        first = self.shards[0]
        self.bands, self.pixel_scale = first.bands, first.pixel_scale
        sizes = [s.shape[0] for s in self.shards]
        #: Row of the whole at which each shard starts (and the total at the end).
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.shape = (int(self.offsets[-1]), *first.shape[1:])
        self.has_masks = any(s.has_masks for s in self.shards)
        try:
            self.table = vstack([s.table for s in self.shards], join_type="exact")
        except TableMergeError as err:
            msg = f"{paths[0]} and the other shards have different catalog columns ({err})"
            raise StoreError(msg) from None
        if all(s.bad_pixels is not None for s in self.shards):
            self.bad_pixels = np.concatenate([s.bad_pixels for s in self.shards])
        else:
            self.bad_pixels = None

    def __len__(self):
        return self.shape[0]

    def shard_of(self, indices):
        """The shard holding each row of ``indices``."""
        return np.searchsorted(self.offsets, np.asarray(indices), side="right") - 1

    def read(self, indices, out=None):
        """As :meth:`_StoreSource.read`, each row read from its shard."""
        indices = np.asarray(indices)
        shape = (indices.size, *self.shape[1:])
        images = out if out is not None else np.empty(shape, dtype=np.float32)
        flags = np.zeros(shape, dtype=bool) if self.has_masks else None
        maybe_bad = np.zeros(indices.size, dtype=bool)
        which = self.shard_of(indices)
        for k in np.unique(which).tolist():
            shard = self.shards[k]
            pos = np.nonzero(which == k)[0]
            local = indices[pos] - self.offsets[k]
            if pos.size == indices.size:  # the whole batch from one shard: read in place
                _, f, bad = shard.read(local, out=images)
            else:
                part, f, bad = shard.read(local)
                images[pos] = part
            if f is not None:
                flags[pos] = f
            maybe_bad[pos] = (
                bad if bad is not None else ~np.isfinite(images[pos].reshape(pos.size, -1)).all(1)
            )
        if flags is not None:
            maybe_bad |= flags.reshape(indices.size, -1).any(axis=1)
        return images, flags, maybe_bad


def _stamp(fd):
    st = os.fstat(fd)
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns


class _ArraySource:
    def __init__(self, images, table, bands, pixel_scale):
        images = np.asarray(images)
        if images.ndim != 4:
            msg = f"images must have shape (n, bands, ny, nx); got shape {images.shape}"
            raise ValueError(msg)
        self.images = images
        self.shape = images.shape
        n = images.shape[0]
        self.bands = (
            tuple(bands)
            if bands is not None
            else tuple(f"band{j}" for j in range(images.shape[1]))
        )
        if len(self.bands) != images.shape[1]:
            looks = (" (it looks channels-last: use np.moveaxis(images, -1, 1))"
                     if images.shape[-1] == len(self.bands) else "")  # fmt: skip
            msg = (
                f"bands names {len(self.bands)} bands but images have {images.shape[1]} "
                f"(axis 1 of (n, bands, ny, nx)){looks}"
            )
            raise ValueError(msg)
        self.table = _default_table(n) if table is None else QTable(table)
        if len(self.table) != n:
            msg = f"table has {len(self.table)} rows but there are {n} images"
            raise ValueError(msg)
        unknown = pixel_scale is None or (isinstance(pixel_scale, float) and np.isnan(pixel_scale))
        self.pixel_scale = np.nan if unknown else check_pixel_scale(pixel_scale)

    def __len__(self):
        return self.shape[0]

    def read(self, indices, out=None):
        images = np.asarray(self.images[np.asarray(indices)], dtype=np.float32)
        if out is not None:
            out[...] = images
            images = out
        return images, None, None


class _FitsSource:
    """FITS files read on access: one per object, or per-band files grouped by object."""

    def __init__(self, entries, table, bands):
        self.entries = entries  # list of tuple of paths (one per band, or one cube)
        self.table = table
        self.bands = bands
        first = self._read_one(0)
        self.bands = first.bands
        self.shape = (len(entries), *first.image.shape)
        self.pixel_scale = first.pixel_scale

    def _read_one(self, i):
        return read_entry(self.entries[i], self.bands, str(self.table["object_id"][i]))

    def __len__(self):
        return len(self.entries)

    def read(self, indices, out=None):
        shape = (len(indices), *self.shape[1:])
        images = out if out is not None else np.empty(shape, dtype=np.float32)
        for k, i in enumerate(indices):
            c = self._read_one(int(i))
            if c.image.shape != self.shape[1:]:
                msg = (
                    f"{', '.join(c.paths)}: object {self.table['object_id'][i]!s} has shape "
                    f"{c.image.shape}, the dataset {self.shape[1:]}"
                )
                raise CutoutReadError(msg)
            images[k] = c.image
        return images, None, None


def _default_table(n):
    t = QTable()
    t["object_id"] = [str(i) for i in range(n)]
    t["ra"] = np.full(n, np.nan) * u.deg
    t["dec"] = np.full(n, np.nan) * u.deg
    return t
