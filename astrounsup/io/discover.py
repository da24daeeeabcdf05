"""Finding cutouts without reading their pixels: FITS files, per-band groups, catalogs."""

from __future__ import annotations

import glob
import os
import sys
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.table import QTable, Table

from astrounsup.io.fits import (
    CutoutReadError,
    _sky_geometry,
    group_band_files,
    read_cutout,
    read_cutout_group,
)
from astrounsup.io.shards import is_sharded

__all__ = [
    "FITS_SUFFIXES",
    "discover_cutouts",
    "find_fits",
    "read_catalog",
    "read_entry",
    "source_kind",
]

#: File names read as FITS cutouts (lower case).
FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fits.fz", ".fz")


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
            paths = [p for p in Path(s).iterdir() if p.name.lower().endswith(FITS_SUFFIXES)]
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


def read_entry(paths, bands, object_id):
    """Read one entry of :func:`discover_cutouts`: a cube or multi-extension file, or one
    file per band.

    Parameters
    ----------
    paths : tuple of pathlib.Path or None
        One file, or one per band (``None`` for a band without a file).
    bands : sequence of str or None
        The bands to read, in order (``None``: every band of a single file).
    object_id : str
        Named in the error message.

    Returns
    -------
    astrounsup.io.Cutout

    Raises
    ------
    astrounsup.io.CutoutReadError
        A band without a file, or a file that cannot be read (naming it and the object).
    """
    if any(p is None for p in paths):
        missing = [b for b, p in zip(bands, paths, strict=True) if p is None]
        found = [str(p) for p in paths if p is not None]
        msg = f"object {object_id}: no file for band(s) {missing} (found {found})"
        raise CutoutReadError(msg)
    if len(paths) == 1:
        return read_cutout(paths[0], bands=bands)
    return read_cutout_group(paths, bands=bands)


def read_catalog(path):
    """A table file as a ``QTable``: CSV, ECSV, FITS, VOTable, or any format astropy reads.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        A file astropy cannot read as a table (naming it and why).
    """
    path = Path(path)
    if not path.exists():
        msg = f"{path}: no such file"
        raise FileNotFoundError(msg)
    fmt = "ascii.csv" if path.suffix.lower() == ".csv" else None
    try:
        table = Table.read(path, format=fmt) if fmt else Table.read(path)
    except Exception as err:  # astropy raises many types for unreadable tables
        # astropy's messages may append a table of every format; the first line says why.
        why = (str(err).strip().splitlines() or [type(err).__name__])[0]
        msg = f"{path}: cannot read as a table ({why})"
        raise ValueError(msg) from err
    return QTable(table)


def discover_cutouts(
    source,
    *,
    bands=None,
    file_column="file",
    id_column=None,
    band_pattern=None,
    strict=True,
    geometry=True,
    base=None,
    allow_outside=False,
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
    base : str or pathlib.Path, optional
        The folder that relative paths in a catalog's file column start from; default the
        catalog file's folder (the current directory for an in-memory table).
    allow_outside : bool, optional
        Let a catalog's file column name files outside ``base`` (absolute paths, ``..``,
        symbolic links to elsewhere) and a folder's links name files outside it; without
        it such a path is refused, naming its row or file, before any file is opened. An
        in-memory table without ``base`` may name any file.

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
    kind = source_kind(source)
    if kind in ("table", "catalog"):
        catalog = source if kind == "table" else read_catalog(source)
        # A table built in Python names its files as its author chose; a catalog file's
        # paths stay in its folder (or ``base``) unless allowed out.
        allow_outside = allow_outside or (kind == "table" and base is None)
        # With a base folder, a file not there is looked for beside the catalog file.
        beside = Path(source).parent if kind == "catalog" and base is not None else None
        if base is None:
            base = Path(".") if kind == "table" else Path(source).parent
        base = Path(base)
        catalog = _coordinates_checked(catalog, "catalog" if kind == "table" else source)
        try:
            entries, ids, table, bands = _catalog_entries(
                catalog, base, bands, file_column, id_column, strict, allow_outside, beside
            )
        except (ValueError, CutoutReadError) as err:
            if kind == "table":
                raise
            raise type(err)(f"{source}: {err}") from None  # name the catalog file
    else:
        paths = find_fits(source)
        if not allow_outside and not isinstance(source, (list, tuple)) and Path(source).is_dir():
            # A link inside the folder to a file elsewhere reads outside it.
            for p in paths:
                if not _within(p, source):
                    msg = (
                        f"{p}: a link to {os.path.realpath(p)}, outside the source folder "
                        f"{source}; allow files elsewhere explicitly (allow_outside=True, "
                        "--allow-outside)"
                    )
                    raise ValueError(msg)
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
                msg = f"duplicate {id_column or 'object_id'} {oid!r}: {seen[oid]} and {files}"
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


#: Where each catalog coordinate may lie, degrees.
_COORDINATE_RANGES = {"ra": (-360.0, 360.0), "dec": (-90.0, 90.0)}


def _coordinates_checked(catalog, where):
    """The catalog with its ``ra``/``dec`` columns as degrees (empty cells NaN), refusing a
    value that is not a number or lies outside the sky, naming the row."""
    catalog = QTable(catalog, copy=False)
    for col, (lo, hi) in _COORDINATE_RANGES.items():
        if col not in catalog.colnames:
            continue
        column = catalog[col]
        unit = getattr(column, "unit", None)
        unit = u.deg if unit is None or unit == u.dimensionless_unscaled else unit
        values = np.ma.getdata(column)
        masked = np.ma.getmaskarray(column)
        if np.asarray(values).dtype.kind in "fiub":
            degrees = np.where(masked, np.nan, np.asarray(values, dtype=np.float64))
        else:
            degrees = _numbers(values.tolist(), masked.tolist(), f"{where}: column {col!r}")
        try:
            degrees = (degrees * u.Unit(unit)).to_value(u.deg)
        except (u.UnitsError, ValueError, TypeError):
            msg = f"{where}: column {col!r} has unit {unit!s}, not an angle"
            raise ValueError(msg) from None
        outside = np.nonzero(np.isfinite(degrees) & ((degrees < lo) | (degrees > hi)))[0]
        if outside.size:
            k = int(outside[0])
            msg = (
                f"{where}: column {col!r} must lie in [{lo:g}, {hi:g}] degrees; row {k} has "
                f"{degrees[k]:g}"
            )
            raise ValueError(msg)
        catalog[col] = degrees * u.deg
    return catalog


def _numbers(values, masked, where):
    """Floats of a text column (empty or masked cells NaN), refusing the first non-number."""
    out = np.full(len(values), np.nan)
    for k, (value, gone) in enumerate(zip(values, masked, strict=True)):
        if gone or (isinstance(value, str) and not value.strip()):
            continue
        try:
            out[k] = float(value)
        except (TypeError, ValueError):
            msg = f"{where} must hold numbers (degrees); row {k} has {value!r}"
            raise ValueError(msg) from None
    return out


def _catalog_entries(catalog, base, bands, file_column, id_column, strict, allow_outside,
                     beside=None):  # fmt: skip
    if file_column not in catalog.colnames:
        msg = f"catalog has no file column {file_column!r}; its columns are {catalog.colnames}"
        raise ValueError(msg)
    if id_column is not None and id_column not in catalog.colnames:
        msg = f"catalog has no id column {id_column!r}; its columns are {catalog.colnames}"
        raise ValueError(msg)
    files = [_inside(str(f), base, k, allow_outside, beside)
             for k, f in enumerate(catalog[file_column])]  # fmt: skip
    column = id_column or ("object_id" if "object_id" in catalog.colnames else None)
    ids = [str(i) for i in catalog[column]] if column else [_stem(p) for p in files]
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


def _inside(name, base, row, allow_outside, beside=None):
    """The path of a catalog's file entry ``name``: relative ones start from ``base`` (or,
    when no such file is there, from ``beside``, the catalog's folder, if one is there),
    and neither they nor absolute ones may leave that folder unless ``allow_outside``,
    symbolic links followed (a link inside the folder to a file elsewhere is outside)."""
    path = Path(name) if Path(name).is_absolute() else Path(base) / name
    if beside is not None and not Path(name).is_absolute() and not path.exists() and (
            Path(beside) / name).exists():  # fmt: skip
        path, base = Path(beside) / name, beside
    if not allow_outside and not _within(path, base):
        msg = (
            f"catalog row {row}: file {name!r} is outside the source folder {base}; "
            "allow files elsewhere explicitly (allow_outside=True, --allow-outside)"
        )
        raise ValueError(msg)
    return path


def _within(path, folder):
    """Whether ``path``, every symbolic link resolved, lies inside ``folder`` (resolved)."""
    root = os.path.realpath(folder)
    return os.path.commonpath([root, os.path.realpath(path)]) == root


def source_kind(source):
    """What kind of cutout source ``source`` is, from its type and name alone.

    Returns
    -------
    {"array", "table", "store", "shards", "catalog", "fits"}
        An in-memory array; an astropy table (a catalog with a file column); an HDF5 store
        (``.h5``/``.hdf5``); a sharded store (:func:`astrounsup.io.is_sharded`: a
        manifest ``.json``, a folder with one, a list of stores); a catalog file (CSV,
        ECSV, or a FITS file whose first data HDU is a table); otherwise FITS cutouts (a
        file, directory, glob or list).

    Examples
    --------
    >>> source_kind("survey.h5"), source_kind("targets.csv"), source_kind("cutouts/*.fits")
    ('store', 'catalog', 'fits')
    >>> source_kind("survey/shards.json"), source_kind(["a.h5", "b.h5"])
    ('shards', 'shards')
    """
    # A tensor exists only once PyTorch is loaded: asking costs no import of it.
    torch = sys.modules.get("torch")
    if isinstance(source, np.ndarray) or (torch is not None and isinstance(source, torch.Tensor)):
        return "array"
    if isinstance(source, Table):
        return "table"
    if is_sharded(source):
        return "shards"
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
