"""``CutoutDataset``: any source of cutouts as a PyTorch dataset."""

from __future__ import annotations

import copy
import math

import numpy as np
import torch

from astrounsup._estimators import check_pixel_scale
from astrounsup.io._sources import _ArraySource, _FitsSource, _ShardedSource, _StoreSource
from astrounsup.io.discover import discover_cutouts, source_kind
from astrounsup.io.normalize import AsinhNormalizer
from astrounsup.noise import border_pixels, estimate_sky

__all__ = ["CutoutDataset", "as_dataset"]


class CutoutDataset(torch.utils.data.Dataset):
    """Cutouts from any source, as a map-style PyTorch dataset.

    Each item is ``(image, mask, index)``: ``image`` a float32 tensor ``(bands, ny, nx)``
    whose NaN/inf pixels are replaced by the cutout's local sky (the median of the finite
    pixels of its 4-pixel border in that band), ``mask`` a bool tensor of the same shape
    that is True where the pixel was NaN/inf or flagged in the store's ``/masks`` (or, after
    normalisation, not finite: such pixels are 0), and ``index`` the row of :attr:`table`.
    A fitted normaliser, if given, is applied after the filling; the border sky and noise it
    measures are kept per cutout after the first read, so an array source must not be
    changed in place once the dataset is made. Batches are read in one go
    (``__getitems__``, and whole batches through :meth:`loader`), so a ``DataLoader`` pulls
    whole runs of a store.

    Parameters
    ----------
    source : path, sequence of paths, glob, numpy.ndarray, or astropy Table
        An HDF5 store (``.h5``/``.hdf5``); a folder of store shards or its manifest
        (:mod:`astrounsup.io.shards`), read as one store; a directory, glob or list of
        FITS files (one object each, or per-band files with ``band_pattern``); a catalog
        file or table with a ``file_column``; or an array ``(n, bands, ny, nx)`` in memory.
    bands : sequence of str, optional
        Bands to read from FITS sources, in order (default: the first file's).
    table : astropy.table.Table, optional
        Metadata rows for an array source.
    pixel_scale : float, optional
        Arcsec per pixel of an array source.
    file_column, id_column : str, optional
        Catalog columns holding the file path (relative to the catalog's directory) and
        the object id (default ``object_id`` when there, else the file names; a column
        named here must exist). Rows sharing an id with a ``band`` column are one
        object's bands.
    band_pattern : str, optional
        Regular expression on file names with groups ``object_id`` and ``band`` that
        groups per-band files into objects.
    normalizer : astrounsup.io.AsinhNormalizer, optional
        Fitted normalisation applied to every item.
    allow_outside : bool, optional
        Let a catalog file name files outside its folder (see
        :func:`astrounsup.io.discover_cutouts`).

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
        id_column=None,
        band_pattern=None,
        normalizer=None,
        allow_outside=False,
    ):
        self.normalizer = normalizer
        kind = source_kind(source)
        if kind == "array":
            src = _ArraySource(np.asarray(source), table, bands, pixel_scale)
        elif kind == "store":
            src = _StoreSource(source)
        elif kind == "shards":
            src = _ShardedSource(source)
        else:
            entries, meta, bands = discover_cutouts(
                source,
                bands=bands,
                file_column=file_column,
                id_column=id_column,
                band_pattern=band_pattern,
                allow_outside=allow_outside,
            )
            src = _FitsSource(entries, meta, bands)
        self._source = src
        # Repairs of a store's bad pixels, computed on first use (the store is immutable).
        self._repair_cache = {} if isinstance(src, (_StoreSource, _ShardedSource)) else None
        # Each cutout's border sky and noise for the normaliser, measured on first use; one
        # dict shared by every with_normalizer copy, so no copy measures them again.
        self._sky = {}
        # Every cutout as read and normalised, when in_memory() made this copy.
        self._memory = None
        # Which cutouts have a constant band (all-zero, say), noted as they are read.
        self._constant = {}
        self.table = src.table
        self.bands = tuple(src.bands)
        self.pixel_scale = src.pixel_scale
        # The source's planes this dataset yields (None: all of them; with_bands).
        self._planes = None

    def __len__(self):
        return len(self._source)

    @property
    def shape(self):
        """``(n, bands, ny, nx)``: the number of cutouts and the shape of each."""
        n, bands, ny, nx = (int(v) for v in self._source.shape)
        return (n, bands if self._planes is None else len(self._planes), ny, nx)

    def with_bands(self, bands):
        """A dataset of the same cutouts with only the planes of ``bands``, in that order
        (e.g. the g, r, i of a g, r, i, z, y survey, for a model trained on those).

        Bad pixels are repaired on the full cutout first; the normaliser then sees the
        chosen planes only. This dataset is left as it is.

        Parameters
        ----------
        bands : sequence of str
            Names among :attr:`bands`, each once.

        Returns
        -------
        CutoutDataset

        Raises
        ------
        ValueError
            A band this dataset does not hold, or one named twice.

        Examples
        --------
        >>> images = np.arange(2 * 3 * 4 * 4, dtype="f4").reshape(2, 3, 4, 4)
        >>> ds = CutoutDataset(images, bands=("g", "r", "i")).with_bands(["i", "g"])
        >>> ds.shape, ds.bands, float(ds[0][0][0, 0, 0])
        ((2, 2, 4, 4), ('i', 'g'), 32.0)
        """
        bands = [str(b) for b in bands]
        missing = [b for b in bands if b not in self.bands]
        if missing or not bands or len(set(bands)) != len(bands):
            msg = (
                f"bands must name planes of the cutouts {list(self.bands)}, each once; got {bands}"
            )
            raise ValueError(msg)
        planes = list(range(len(self.bands))) if self._planes is None else self._planes
        other = copy.copy(self)
        other._planes = [planes[self.bands.index(b)] for b in bands]
        other.bands = tuple(bands)
        other._sky = {}  # the sky of other planes
        other._constant = {}
        other._memory = None
        return other

    def with_normalizer(self, normalizer):
        """A dataset of the same cutouts with another normaliser (``None``: raw fluxes).

        The source and the per-cutout repairs and sky estimates are shared, not copied;
        this dataset is left as it is.

        Parameters
        ----------
        normalizer : astrounsup.io.AsinhNormalizer or None

        Returns
        -------
        CutoutDataset
        """
        other = copy.copy(self)
        other.normalizer = normalizer
        other._memory = None
        return other

    def with_pixel_scale(self, pixel_scale):
        """A dataset of the same cutouts whose unknown pixel scale is ``pixel_scale``.

        Parameters
        ----------
        pixel_scale : float
            Arcsec per pixel, in [0.01, 5].

        Returns
        -------
        CutoutDataset

        Raises
        ------
        ValueError
            Not a number in [0.01, 5] (e.g. degrees), or the cutouts know another scale
            (more than 0.5% off).
        """
        pixel_scale = check_pixel_scale(pixel_scale)
        known = self.pixel_scale
        if np.isfinite(known) and abs(known - pixel_scale) > 0.005 * known:
            msg = (
                f"pixel_scale {pixel_scale} arcsec given, but the cutouts have {known:.4g} "
                "arcsec per pixel"
            )
            raise ValueError(msg)
        other = copy.copy(self)
        other.pixel_scale = float(pixel_scale)
        return other

    def in_memory(self, *, max_bytes=2**31):
        """This dataset with every cutout read, repaired and normalised once and kept in
        memory: the same batches, served without reading or normalising again (as a
        training of many epochs over a small survey wants).

        Parameters
        ----------
        max_bytes : int, optional
            The most memory to use (4 bytes per pixel for the values, 1 for the mask);
            a larger dataset is returned as it is, read from its source each time.

        Returns
        -------
        CutoutDataset
            A copy holding the cutouts in memory, or this dataset when they would not fit.

        Examples
        --------
        >>> images = np.random.default_rng(0).normal(size=(6, 2, 16, 16)).astype("f4")
        >>> ds = CutoutDataset(images, bands=("g", "r"))
        >>> kept = ds.in_memory()
        >>> bool(torch.equal(kept[[4, 1]][0], ds[[4, 1]][0])), ds.in_memory(max_bytes=10) is ds
        (True, True)
        """
        n = len(self)
        need = n * int(np.prod(self.shape[1:])) * 5
        if need > max_bytes or self._memory is not None:
            return self
        values = torch.empty((n, *self.shape[1:]), dtype=torch.float32)
        masks = torch.empty(values.shape, dtype=torch.bool)
        for lo in range(0, n, 512):
            rows = np.arange(lo, min(n, lo + 512))
            values[lo : rows[-1] + 1], masks[lo : rows[-1] + 1] = self._load(rows)
        other = copy.copy(self)
        other._memory = (values, masks)
        return other

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
        if self._memory is not None:
            rows = torch.from_numpy(indices % n)
            x = self._memory[0][rows]
            self._note_constant(indices % n, x)  # normalised: a constant band stays constant
            return x, self._memory[1][rows]
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
        if self._planes is not None:
            x, mask = x[:, self._planes].contiguous(), mask[:, self._planes].contiguous()
        self._note_constant(indices % n, x)
        if isinstance(self.normalizer, AsinhNormalizer):
            sky, noise = self._sky_noise(indices % n, x)
            x = self.normalizer.transform(x, sky=sky, noise=noise)
        elif self.normalizer is not None:
            x = self.normalizer.transform(x)
        if self.normalizer is not None:
            # Nothing that is not finite reaches a model: such a pixel is 0 and masked.
            bad = ~torch.isfinite(x)
            if bool(bad.any()):
                x = torch.where(bad, 0.0, x)
                mask |= bad
        return x, mask

    def _note_constant(self, rows, x):
        """Note which of the cutouts ``rows`` (batch ``x``, bad pixels repaired) have a band
        whose every pixel has one value."""
        if "flag" not in self._constant:
            self._constant.update(known=np.zeros(len(self), bool), flag=np.zeros(len(self), bool))
        flat = x.flatten(2)
        self._constant["flag"][rows] = (flat.amax(-1) == flat.amin(-1)).any(1).numpy()
        self._constant["known"][rows] = True

    def pixels(self, rows):
        """The stored fluxes of cutouts ``rows``, not normalised, with NaN where a pixel has
        no data (NaN/inf, or flagged in the store's ``/masks``): what a picture shows.

        Parameters
        ----------
        rows : sequence of int
            Rows of :attr:`table`.

        Returns
        -------
        numpy.ndarray of shape (len(rows), bands, ny, nx), float32

        Examples
        --------
        >>> images = np.ones((2, 1, 8, 8), dtype=np.float32)
        >>> images[1, 0, 0, 0] = np.nan
        >>> ds = CutoutDataset(images, bands=["r"])
        >>> bool(np.isnan(ds.pixels([1])[0, 0, 0, 0])), float(ds.pixels([0]).sum())
        (True, 64.0)
        """
        raw = self.with_normalizer(None)
        images, masks, _ = raw[[int(r) for r in rows]]
        return np.where(masks.numpy(), np.float32(np.nan), images.numpy())

    def constant_flags(self):
        """Which cutouts have a band of one value everywhere (all zero, a blank or
        saturated plane, a band with no good pixel), ``(n,)`` bool: nothing in it can be
        measured, so the steps after embedding rank them last, as ``bad_pixel_flag``.
        Reads every cutout not read yet.

        Returns
        -------
        numpy.ndarray of shape (n,), bool

        Examples
        --------
        >>> images = np.random.default_rng(0).normal(size=(3, 2, 16, 16)).astype(np.float32)
        >>> images[1, 0] = 0.0
        >>> CutoutDataset(images, bands=["g", "r"], normalizer=None).constant_flags().tolist()
        [False, True, False]
        """
        n = len(self)
        if "known" not in self._constant or not self._constant["known"].all():
            for lo in range(0, n, 512):
                self._load(np.arange(lo, min(lo + 512, n)))
        return self._constant["flag"].copy() if n else np.zeros(0, dtype=bool)

    def noise_flags(self):
        """Which cutouts and bands have no measurable border noise, ``(n, bands)`` bool.

        Those are normalised with the band's reference noise
        (:meth:`astrounsup.io.AsinhNormalizer.noise_flags`); all False without an
        :class:`~astrounsup.io.AsinhNormalizer`. Measures every cutout not read yet.

        Returns
        -------
        numpy.ndarray of shape (n, bands), bool
        """
        n, bands = len(self), len(self.bands)
        if not isinstance(self.normalizer, AsinhNormalizer):
            return np.zeros((n, bands), dtype=bool)
        cache = self._sky.get("cache")
        if cache is None or cache[0] != self.normalizer.border or not cache[1].all():
            for lo in range(0, n, 512):
                self._load(np.arange(lo, min(lo + 512, n)))
        return self.normalizer.noise_flags(noise=self._sky["cache"][3])

    def _sky_noise(self, rows, x):
        """Border sky and noise ``(n, bands)`` of the cutouts ``rows`` (filled batch ``x``),
        as the normaliser measures them; each cutout's are measured once and kept, because
        the sigma-clipped medians cost more than the rest of reading a batch."""
        border = self.normalizer.border
        cache = self._sky.get("cache")
        if cache is None or cache[0] != border or cache[2].shape[1] != x.shape[1]:
            n, bands = len(self), x.shape[1]
            cache = (
                border,
                np.zeros(n, dtype=bool),
                np.empty((n, bands), dtype=np.float32),
                np.empty((n, bands), dtype=np.float32),
            )
            self._sky["cache"] = cache
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
        return f"CutoutDataset({len(self)} cutouts of {tuple(self.shape[1:])}, bands {self.bands})"


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


def as_dataset(data, *, bands=None, pixel_scale=None, table=None):
    """``data`` as a :class:`CutoutDataset`: a store path, FITS files, a catalog, an array,
    or a dataset (returned as it is).

    Parameters
    ----------
    data : path, sequence of paths, glob, astropy Table, numpy.ndarray or CutoutDataset
        What :class:`CutoutDataset` reads; an array has shape ``(n, bands, ny, nx)``.
    bands : sequence of str, optional
        The band of each plane of an array (default ``band0``, ``band1``, ...), the bands
        to read from FITS files, or the planes of a store or dataset to keep
        (:meth:`CutoutDataset.with_bands`).
    pixel_scale : float, optional
        Arcsec per pixel of an array (default unknown, NaN), or of other cutouts that do
        not know theirs (:meth:`CutoutDataset.with_pixel_scale`).
    table : astropy.table.Table, optional
        One metadata row per cutout of an array (default: ids ``"0"``, ``"1"``, ...).

    Returns
    -------
    CutoutDataset

    Raises
    ------
    ValueError
        ``table`` given for data that is not an array (the message names the option),
        ``bands`` a store or dataset does not hold, or a ``pixel_scale`` that contradicts
        the cutouts'.

    Examples
    --------
    >>> import numpy as np
    >>> ds = as_dataset(np.zeros((5, 2, 16, 16), "f4"), bands=("g", "r"), pixel_scale=0.2)
    >>> ds.shape, ds.bands, ds.pixel_scale
    ((5, 2, 16, 16), ('g', 'r'), 0.2)
    """
    if isinstance(data, CutoutDataset):
        kind = "dataset"
    elif isinstance(data, (np.ndarray, torch.Tensor)):
        kind = "array"
    else:
        kind = source_kind(data)
    given = {"bands": bands, "pixel_scale": pixel_scale, "table": table}
    # A pixel scale may also be given to cutouts that do not know theirs.
    allowed = {"array": given, "fits": {"bands", "pixel_scale"},
               "catalog": {"bands", "pixel_scale"}, "table": {"bands", "pixel_scale"},
               "store": {"bands", "pixel_scale"}, "shards": {"bands", "pixel_scale"},
               "dataset": {"bands", "pixel_scale"}}  # fmt: skip
    refused = [k for k, v in given.items() if v is not None and k not in allowed.get(kind, ())]
    if refused:
        what = {"dataset": "a CutoutDataset", "store": "a store", "shards": "a sharded store"}.get(
            kind, f"{kind} data"
        )
        msg = f"{', '.join(refused)} describe(s) cutouts given as an array; {what} knows its own"
        raise ValueError(msg)
    if isinstance(data, torch.Tensor):
        data = data.detach().cpu().numpy()
    if kind == "array":
        return CutoutDataset(
            np.asarray(data, dtype=np.float32), bands=bands, pixel_scale=pixel_scale, table=table
        )
    own_bands = kind in ("fits", "catalog", "table")
    if kind == "dataset":
        dataset = data
    else:
        dataset = CutoutDataset(data, bands=bands if own_bands else None)
    if bands is not None and not own_bands and tuple(bands) != dataset.bands:
        dataset = dataset.with_bands(bands)
    if pixel_scale is None:
        return dataset
    return dataset.with_pixel_scale(pixel_scale)
