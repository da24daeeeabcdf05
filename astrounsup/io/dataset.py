"""``CutoutDataset``: any source of cutouts as a PyTorch dataset."""

from __future__ import annotations

import glob
import math
import os
import sys
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
import torch
from astropy.table import QTable, Table

from astrounsup.io._fitsread import (
    CutoutReadError,
    _sky_geometry,
    group_band_files,
    read_cutout,
    read_cutout_group,
)
from astrounsup.io.hdf5 import open_store, read_table
from astrounsup.io.normalize import AsinhNormalizer, border_pixels, estimate_sky

__all__ = ["CutoutDataset", "discover_cutouts", "find_fits"]

_FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fits.fz", ".fz")
_TABLE_SUFFIXES = {".csv": "ascii.csv", ".ecsv": "ascii.ecsv", ".fits": "fits", ".fit": "fits"}


def find_fits(source):
    """FITS files of a directory, a glob pattern, or a list of paths, sorted.

    Raises
    ------
    FileNotFoundError
        When nothing matches (the message names the source).
    """
    if isinstance(source, (list, tuple)):
        paths = [Path(p) for p in source]
    else:
        s = str(source)
        if Path(s).is_dir():
            paths = [p for p in Path(s).iterdir() if p.name.lower().endswith(_FITS_SUFFIXES)]
        elif any(c in s for c in "*?["):
            paths = [Path(p) for p in glob.glob(s)]
        elif Path(s).exists():
            paths = [Path(s)]
        else:
            msg = f"{source}: no such file or directory"
            raise FileNotFoundError(msg)
    paths = sorted(paths)
    if not paths:
        msg = f"{source}: no FITS files found"
        raise FileNotFoundError(msg)
    return paths


class _RawChunkReader:
    """Positional reads of whole-cutout runs straight from an uncompressed store's chunks.

    For an unfiltered, little-endian float32 dataset each chunk's bytes on disk are its
    cutouts as they are in memory, so HDF5 is asked only where each chunk starts and the
    bytes are read with ``os.preadv`` directly into the destination array: about twice the
    throughput of ``h5py``'s own reads. :meth:`usable` says whether a dataset qualifies.
    """

    def __init__(self, dset):
        self.rows = dset.chunks[0]
        self.row_bytes = int(np.prod(dset.shape[1:])) * dset.dtype.itemsize
        n_chunks = -(-dset.shape[0] // self.rows)
        self.offsets = np.full(n_chunks, -1, dtype=np.int64)
        for k in range(dset.id.get_num_chunks()):
            info = dset.id.get_chunk_info(k)
            self.offsets[info.chunk_offset[0] // self.rows] = info.byte_offset

    @staticmethod
    def usable(dset):
        return (
            hasattr(os, "preadv")
            and sys.byteorder == "little"
            and dset.chunks is not None
            and dset.chunks[1:] == dset.shape[1:]
            and dset.dtype == np.dtype("<f4")
            and dset.id.get_create_plist().get_nfilters() == 0
            and dset.id.get_num_chunks() == -(-dset.shape[0] // dset.chunks[0])
        )

    def read(self, fd, lo, hi, out):
        """Rows [lo, hi) into the C-contiguous float32 array ``out``."""
        view = memoryview(out).cast("B")
        pos = 0
        while lo < hi:
            c = lo // self.rows
            start, stop = lo - c * self.rows, min(hi - c * self.rows, self.rows)
            nbytes = (stop - start) * self.row_bytes
            got = os.preadv(
                fd, [view[pos : pos + nbytes]], int(self.offsets[c]) + start * self.row_bytes
            )
            if got != nbytes:
                msg = f"short read: {got} of {nbytes} bytes of chunk {c}"
                raise OSError(msg)
            pos += nbytes
            lo = c * self.rows + stop


class _StoreSource:
    """Lazy reader of an HDF5 store: one open file per process, row runs read as slices."""

    def __init__(self, path):
        self.path = Path(path)
        with open_store(self.path) as f:
            self.table = read_table(f)
            self.bands = tuple(str(b) for b in f.attrs["bands"])
            self.pixel_scale = float(f.attrs["pixel_scale"])
            self.shape = f["images"].shape
            self.has_masks = "masks" in f
            # Counted once when the store was written: clean cutouts need no pixel check.
            # (A store without the counts is checked pixel by pixel.)
            self.bad_pixels = f["bad_pixels"][...] if "bad_pixels" in f else None
            self._raw = (
                _RawChunkReader(f["images"]) if _RawChunkReader.usable(f["images"]) else None
            )
        self._file = None
        self._fd = None
        self._pid = None

    def __getstate__(self):
        state = self.__dict__.copy()
        # Open files do not cross processes; each process opens its own.
        state.update(_file=None, _fd=None, _pid=None)
        return state

    def _handle(self):
        if self._file is None or self._pid != os.getpid():
            self._file = open_store(self.path)
            self._fd = os.open(self.path, os.O_RDONLY) if self._raw is not None else None
            self._pid = os.getpid()
        return self._file

    def __del__(self):
        if getattr(self, "_fd", None) is not None and self._pid == os.getpid():
            os.close(self._fd)

    def __len__(self):
        return self.shape[0]

    def read(self, indices, out=None):
        """Images (and flags) of ``indices`` in that order; ``out`` receives the images.

        Indices are visited in file order and grouped into runs of consecutive rows, each
        read with one call straight into its place in the output (a sequential batch is a
        single run; a shuffled one, single rows).
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
            if self._raw is not None:
                self._raw.read(self._fd, lo, hi, images[pos : pos + b - a])
            else:
                f["images"].read_direct(images, np.s_[lo:hi], np.s_[pos : pos + b - a])
            if flags is not None:
                f["masks"].read_direct(flags, np.s_[lo:hi], np.s_[pos : pos + b - a])
        maybe_bad = None if self.bad_pixels is None else self.bad_pixels[indices] > 0
        return images, flags, maybe_bad


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
            msg = f"bands names {len(self.bands)} bands but images have {images.shape[1]}"
            raise ValueError(msg)
        self.table = _default_table(n) if table is None else QTable(table)
        if len(self.table) != n:
            msg = f"table has {len(self.table)} rows but there are {n} images"
            raise ValueError(msg)
        self.pixel_scale = np.nan if pixel_scale is None else float(pixel_scale)

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


def read_entry(paths, bands, object_id):
    """Read one discovered entry (a file, or one file per band)."""
    if any(p is None for p in paths):
        missing = [b for b, p in zip(bands, paths, strict=True) if p is None]
        found = [str(p) for p in paths if p is not None]
        msg = f"object {object_id}: no file for band(s) {missing} (found {found})"
        raise CutoutReadError(msg)
    if len(paths) == 1:
        return read_cutout(paths[0], bands=bands)
    return read_cutout_group(paths, bands=bands)


def _default_table(n):
    t = QTable()
    t["object_id"] = [str(i) for i in range(n)]
    t["ra"] = np.full(n, np.nan) * u.deg
    t["dec"] = np.full(n, np.nan) * u.deg
    return t


def _read_catalog(path):
    path = Path(path)
    fmt = _TABLE_SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        msg = f"{path}: catalog must be one of {sorted(_TABLE_SUFFIXES)}"
        raise ValueError(msg)
    return QTable(Table.read(path, format=fmt))


def discover_cutouts(
    source,
    *,
    bands=None,
    file_column="file",
    id_column="object_id",
    band_pattern=None,
    strict=True,
    geometry=True,
):
    """Find the cutouts of a FITS source without reading their pixels.

    Parameters
    ----------
    source : path, glob, sequence of paths, catalog path or astropy Table
        See :class:`CutoutDataset`.
    bands, file_column, id_column, band_pattern
        See :class:`CutoutDataset`.
    strict : bool, optional
        Raise on duplicate object ids, missing band files and unreadable headers. With
        ``False`` (as ``ingest`` uses) they are kept, to be rejected one by one when read:
        a missing band file is ``None`` in its entry.
    geometry : bool, optional
        Read each first file's header for the RA/Dec the catalog lacks; ``False`` leaves
        them NaN (for callers that read every file anyway).

    Returns
    -------
    entries : list of tuple of pathlib.Path or None
        Per object, its file (a cube or multi-extension file) or one file per band.
    table : astropy.table.QTable
        ``object_id``, ``ra``, ``dec`` (catalog values, else the WCS centre of the first
        file, else NaN), ``file`` and carried catalog columns.
    bands : tuple of str or None
        The bands; ``None`` when they come from the files themselves and no file was read.
    """
    kind = _source_kind(source)
    if kind in ("table", "catalog"):
        catalog = source if kind == "table" else _read_catalog(source)
        base = Path(".") if kind == "table" else Path(source).parent
        entries, ids, table, bands = _catalog_entries(
            catalog, base, bands, file_column, id_column, strict
        )
    else:
        paths = find_fits(source)
        table = QTable()
        if band_pattern is not None:
            groups = group_band_files(paths, pattern=band_pattern)
            if bands is None:
                bands = tuple(sorted(next(iter(groups.values()))))
            entries = []
            for oid, files in groups.items():
                missing = [b for b in bands if b not in files]
                if missing and strict:
                    found = [str(p) for p in files.values()]
                    msg = f"object {oid!r}: no file for band(s) {missing} (found {found})"
                    raise CutoutReadError(msg)
                entries.append(tuple(files.get(b) for b in bands))
            ids = list(groups)
        else:
            entries = [(p,) for p in paths]
            ids = [_stem(p) for p in paths]
    if strict:
        seen = {}
        for oid, entry in zip(ids, entries, strict=True):
            files = ", ".join(str(p) for p in entry if p is not None)
            if oid in seen:
                msg = f"duplicate {id_column} {oid!r}: {seen[oid]} and {files}"
                raise ValueError(msg)
            seen[oid] = files
    n = len(entries)
    geometry = (
        _fits_geometry(entries, strict)
        if geometry
        else {"ra": np.full(n, np.nan), "dec": np.full(n, np.nan)}
    )
    table["object_id"] = ids
    for col in ("ra", "dec"):
        if col not in table.colnames:
            table[col] = geometry[col] * u.deg
    table["file"] = [",".join(str(p) for p in e if p is not None) for e in entries]
    first = ["object_id", "ra", "dec"]
    table = table[first + [c for c in table.colnames if c not in first]]
    return entries, table, None if bands is None else tuple(bands)


def _catalog_entries(catalog, base, bands, file_column, id_column, strict):
    if file_column not in catalog.colnames:
        msg = f"catalog has no file column {file_column!r}; its columns are {catalog.colnames}"
        raise ValueError(msg)
    files = [
        Path(str(f)) if Path(str(f)).is_absolute() else base / str(f) for f in catalog[file_column]
    ]
    ids = (
        [str(i) for i in catalog[id_column]]
        if id_column in catalog.colnames
        else [_stem(p) for p in files]
    )
    if "band" not in catalog.colnames:
        table = QTable(catalog)
        table.remove_column(file_column)
        return [(f,) for f in files], ids, table, bands
    rows, groups = {}, {}
    for k, (oid, band, f) in enumerate(zip(ids, catalog["band"], files, strict=True)):
        rows.setdefault(oid, k)
        groups.setdefault(oid, {})[str(band)] = f
    order = list(groups)
    if bands is None:
        bands = tuple(groups[order[0]])
    entries = []
    for oid in order:
        missing = [b for b in bands if b not in groups[oid]]
        if missing and strict:
            msg = f"catalog: object {oid!r} has no row for band(s) {missing}"
            raise CutoutReadError(msg)
        entries.append(tuple(groups[oid].get(b) for b in bands))
    table = QTable(catalog[[rows[o] for o in order]])
    table.remove_columns(["band", file_column])
    return entries, order, table, bands


def _fits_geometry(entries, strict):
    """RA/Dec of each entry's first file from its header WCS (NaN if none)."""
    from astropy.io import fits

    ra, dec = np.full(len(entries), np.nan), np.full(len(entries), np.nan)
    for i, paths in enumerate(entries):
        first = next((p for p in paths if p is not None), None)
        if first is None:
            continue
        try:
            # Our own handle, closed even when astropy fails on a damaged file.
            with open(first, "rb") as fh, warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with fits.open(fh) as hdul:
                    img = next((h for h in hdul if h.is_image and h.shape), None)
                    if img is not None:
                        ra[i], dec[i], _ = _sky_geometry(img.header, img.shape)
        except Exception as err:
            if strict:
                msg = f"{first}: cannot read FITS header ({type(err).__name__}: {err})"
                raise CutoutReadError(msg) from err
    return {"ra": ra, "dec": dec}


class CutoutDataset(torch.utils.data.Dataset):
    """Cutouts from any source, as a map-style PyTorch dataset.

    Each item is ``(image, mask, index)``: ``image`` a float32 tensor ``(bands, ny, nx)``
    whose NaN/inf pixels are replaced by the cutout's local sky (the median of the finite
    pixels of its 4-pixel border in that band), ``mask`` a bool tensor of the same shape
    that is True where the pixel was NaN/inf or flagged in the store's ``/masks``, and
    ``index`` the row of :attr:`table`. A fitted normaliser, if given, is applied after the
    filling; the border sky and noise it measures are kept per cutout after the first read,
    so an array source must not be changed in place once the dataset is made. Batches are
    read in one go (``__getitems__``, and whole batches through :meth:`loader`), so a
    ``DataLoader`` pulls whole runs of a store.

    Parameters
    ----------
    source : path, sequence of paths, glob, numpy.ndarray, or astropy Table
        An HDF5 store (``.h5``/``.hdf5``); a directory, glob or list of FITS files (one
        object each, or per-band files with ``band_pattern``); a catalog file or table with
        a ``file_column``; or an array ``(n, bands, ny, nx)`` in memory.
    bands : sequence of str, optional
        Bands to read from FITS sources, in order (default: the first file's).
    table : astropy.table.Table, optional
        Metadata rows for an array source.
    pixel_scale : float, optional
        Arcsec per pixel of an array source.
    file_column, id_column : str, optional
        Catalog columns holding the file path (relative to the catalog's directory) and
        the object id. Rows sharing an id with a ``band`` column are one object's bands.
    band_pattern : str, optional
        Regular expression on file names with groups ``object_id`` and ``band`` that
        groups per-band files into objects.
    normalizer : astrounsup.io.AsinhNormalizer, optional
        Fitted normalisation applied to every item.

    Attributes
    ----------
    table : astropy.table.QTable
        ``object_id``, ``ra``, ``dec`` and every carried column, one row per item.
    bands : tuple of str
    pixel_scale : float
        Arcsec per pixel (NaN if unknown).

    Examples
    --------
    >>> from astrounsup.simulate import simulate_lens_survey
    >>> s = simulate_lens_survey(8, seed=1)
    >>> ds = CutoutDataset(s.images, table=s.table, bands=s.bands)
    >>> image, mask, index = ds[3]
    >>> tuple(image.shape), mask.dtype, index
    ((3, 64, 64), torch.bool, 3)
    """

    def __init__(
        self,
        source,
        *,
        bands=None,
        table=None,
        pixel_scale=None,
        file_column="file",
        id_column="object_id",
        band_pattern=None,
        normalizer=None,
    ):
        self.normalizer = normalizer
        kind = _source_kind(source)
        if kind == "array":
            src = _ArraySource(np.asarray(source), table, bands, pixel_scale)
        elif kind == "store":
            src = _StoreSource(source)
        else:
            entries, meta, bands = discover_cutouts(
                source,
                bands=bands,
                file_column=file_column,
                id_column=id_column,
                band_pattern=band_pattern,
            )
            src = _FitsSource(entries, meta, bands)
        self._source = src
        # Repairs of a store's bad pixels, computed on first use (the store is immutable).
        self._repair_cache = {} if isinstance(src, _StoreSource) else None
        # Each cutout's border sky and noise for the normaliser, measured on first use.
        self._sky_cache = None
        self.table = src.table
        self.bands = tuple(src.bands)
        self.pixel_scale = src.pixel_scale

    def __len__(self):
        return len(self._source)

    def __getitem__(self, index):
        """One item ``(image, mask, index)``, or, for a sequence of indices, the batch
        ``(images, masks, indices)`` as stacked tensors (what :meth:`loader` uses)."""
        if isinstance(index, (np.integer, int)) and not isinstance(index, bool):
            n = len(self)
            if not -n <= index < n:
                msg = f"index {index} out of range for a dataset of {n} cutouts"
                raise IndexError(msg)
            return self.__getitems__([index % n])[0]
        if isinstance(index, (list, tuple, np.ndarray, torch.Tensor)):
            indices = np.asarray(index, dtype=np.int64).reshape(-1)
            x, bad = self._load(indices)
            return x, bad, torch.from_numpy(indices)
        msg = f"index must be an integer or a sequence of integers; got {type(index).__name__}"
        raise TypeError(msg)

    def __getitems__(self, indices):
        """Read a batch; returns a list of ``(image, mask, index)`` tuples."""
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        x, bad = self._load(indices)
        return [(x[k], bad[k], int(i)) for k, i in enumerate(indices)]

    def _load(self, indices):
        n = len(self)
        if indices.size and (indices.min() < -n or indices.max() >= n):
            msg = f"indices out of range for a dataset of {n} cutouts: {indices.tolist()[:8]}"
            raise IndexError(msg)
        shape = (indices.size, *self._source.shape[1:])
        x = _new_tensor(shape, torch.float32)
        images, flags, maybe_bad = self._source.read(indices % n, out=x.numpy())
        mask = _new_tensor(shape, torch.bool).zero_()
        if maybe_bad is None:  # unknown: look at every pixel once
            maybe_bad = ~np.isfinite(images.reshape(len(images), -1)).all(axis=1)
            if flags is not None:
                maybe_bad |= flags.reshape(len(flags), -1).any(axis=1)
        rows = np.nonzero(maybe_bad)[0]
        if rows.size:
            flat, values = self._repairs(rows, indices[rows] % n, images, flags)
            # One scatter for the whole batch: the bad pixels get their band's local sky.
            x.view(-1)[flat] = values
            mask.view(-1)[flat] = True
        if isinstance(self.normalizer, AsinhNormalizer):
            sky, noise = self._sky_noise(indices % n, x)
            x = self.normalizer.transform(x, sky=sky, noise=noise)
        elif self.normalizer is not None:
            x = self.normalizer.transform(x)
        return x, mask

    def _sky_noise(self, rows, x):
        """Border sky and noise ``(n, bands)`` of the cutouts ``rows`` (filled batch ``x``),
        as the normaliser measures them; each cutout's are measured once and kept, because
        the sigma-clipped medians cost more than the rest of reading a batch."""
        border = self.normalizer.border
        cache = self._sky_cache
        if cache is None or cache[0] != border or cache[2].shape[1] != x.shape[1]:
            n, bands = len(self), x.shape[1]
            cache = (
                border,
                np.zeros(n, dtype=bool),
                np.empty((n, bands), dtype=np.float32),
                np.empty((n, bands), dtype=np.float32),
            )
            self._sky_cache = cache
        _, known, sky, noise = cache
        todo = ~known[rows]
        if todo.any():
            new_sky, new_noise = estimate_sky(x[torch.from_numpy(todo)], border=border)
            sky[rows[todo]], noise[rows[todo]] = new_sky.numpy(), new_noise.numpy()
            known[rows[todo]] = True
        return torch.from_numpy(sky[rows]), torch.from_numpy(noise[rows])

    def _repairs(self, positions, rows, images, flags):
        """Flat indices into the batch of the bad pixels of cutouts ``rows`` (at batch
        ``positions``) and the values that replace them.

        The value is the local sky: the median of the finite border pixels of the band (0
        when the whole border is bad), robust to a source or a bad column on the border. A
        store never changes, so each cutout's repair is computed once per process.
        """
        per_image = int(np.prod(images.shape[1:]))
        per_band = int(np.prod(images.shape[2:]))
        flat_parts, value_parts = [], []
        for pos, row in zip(positions.tolist(), rows.tolist(), strict=True):
            repair = self._repair_cache.get(row) if self._repair_cache is not None else None
            if repair is None:
                img = torch.from_numpy(images[pos][None])
                bad = ~torch.isfinite(img)
                if flags is not None:
                    bad |= torch.from_numpy(flags[pos][None])
                frame = border_pixels(torch.where(bad, torch.nan, img))
                sky = torch.nan_to_num(torch.nanmedian(frame, dim=-1).values, nan=0.0)[0]
                idx = torch.flatten(bad).nonzero().squeeze(1)
                repair = (idx, sky[idx // per_band])
                if self._repair_cache is not None:
                    self._repair_cache[row] = repair
            flat_parts.append(repair[0] + pos * per_image)
            value_parts.append(repair[1])
        return torch.cat(flat_parts), torch.cat(value_parts)

    def loader(
        self,
        batch_size,
        *,
        shuffle=False,
        num_workers=0,
        seed=None,
        drop_last=False,
        pin_memory=None,
    ):
        """A DataLoader of stacked batches ``(images, masks, indices)``, read in one go.

        Batches are fetched whole (no per-item collation), which is the fast path for a
        store: a sequential batch is one slice of the file.

        Parameters
        ----------
        batch_size : int
        shuffle : bool, optional
            Random order, drawn from ``seed``.
        num_workers : int, optional
            Worker processes; each opens the store once.
        seed : int, optional
            Seed of the shuffling generator.
        drop_last : bool, optional
        pin_memory : bool, optional
            Default: whether CUDA is available, for fast non-blocking copies to the GPU.

        Returns
        -------
        torch.utils.data.DataLoader
        """
        if not (isinstance(batch_size, int) and batch_size > 0):
            msg = f"batch_size must be a positive integer; got {batch_size!r}"
            raise ValueError(msg)
        generator = torch.Generator()
        generator.manual_seed(0 if seed is None else int(seed))
        base = (
            torch.utils.data.RandomSampler(self, generator=generator)
            if shuffle
            else torch.utils.data.SequentialSampler(self)
        )
        sampler = torch.utils.data.BatchSampler(base, batch_size, drop_last)
        return torch.utils.data.DataLoader(
            self,
            batch_size=None,
            sampler=sampler,
            num_workers=num_workers,
            pin_memory=torch.cuda.is_available() if pin_memory is None else pin_memory,
            persistent_workers=num_workers > 0,
        )

    def __repr__(self):
        return (
            f"CutoutDataset({len(self)} cutouts of {tuple(self._source.shape[1:])}, "
            f"bands {self.bands})"
        )


def _new_tensor(shape, dtype):
    """An uninitialised tensor; inside a DataLoader worker, in shared memory from the start,
    so handing the batch to the main process copies nothing (as ``default_collate`` does)."""
    if torch.utils.data.get_worker_info() is None:
        return torch.empty(shape, dtype=dtype)
    try:
        storage = torch.empty(0, dtype=dtype)._typed_storage()._new_shared(math.prod(shape))
        return torch.empty(0, dtype=dtype).new(storage).view(shape)
    except AttributeError:  # torch without these internals: one extra copy
        return torch.empty(shape, dtype=dtype).share_memory_()


def _source_kind(source):
    if isinstance(source, (np.ndarray, torch.Tensor)):
        return "array"
    if isinstance(source, Table):
        return "table"
    if isinstance(source, (str, os.PathLike)):
        lower = str(source).lower()
        if lower.endswith((".h5", ".hdf5")):
            return "store"
        if lower.endswith((".csv", ".ecsv")) or _is_fits_table(source):
            return "catalog"
    return "fits"


def _stem(path):
    name = Path(path).name
    for suffix in (".gz", ".fz"):
        name = name.removesuffix(suffix)
    return name.rsplit(".", 1)[0]


def _is_fits_table(path):
    """A .fits file whose first HDU with data is a table, not an image."""
    p = Path(path)
    if not (p.is_file() and p.suffix.lower() in (".fits", ".fit")):
        return False
    from astropy.io import fits

    with fits.open(p) as hdul:
        for h in hdul:
            if h.header.get("NAXIS", 0) > 0:
                return isinstance(h, (fits.BinTableHDU, fits.TableHDU))
    return False
