"""The data step: a cutout store to work on, opened as it is or ingested from FITS files."""

from __future__ import annotations

from pathlib import Path

from astrounsup.io import FITS_SUFFIXES, ingest, source_kind, store_info

__all__ = ["open_or_ingest"]


def open_or_ingest(source, *, store=None, catalog=None, progress=True, **ingest_options):
    """The cutout store of ``source``: ``source`` itself when it is one, else the store that
    :func:`astrounsup.io.ingest` makes of it (resuming an interrupted ingest).

    Parameters
    ----------
    source : path, glob or sequence of paths
        A store (``.h5``), a sharded store (:mod:`astrounsup.io.shards`), FITS cutouts (a
        folder, glob or list) or a catalog with a file column.
    store : str or pathlib.Path, optional
        Where to ingest FITS cutouts to; required unless ``source`` is a store.
    catalog : path or astropy.table.Table, optional
        As :func:`astrounsup.io.ingest` takes it.
    progress : bool, optional
        Show a progress bar while ingesting.
    **ingest_options
        More options of :func:`astrounsup.io.ingest` (``bands``, ``band_pattern``, ...).

    Returns
    -------
    store : pathlib.Path or list of pathlib.Path
        (``source`` itself when it is a list of shards)
    report : astrounsup.io.IngestReport or None
        What the ingest did (None when ``source`` was already a store).

    Raises
    ------
    FileNotFoundError
        A ``source`` that does not exist.
    ValueError
        A file that is neither a store, FITS nor a catalog; FITS cutouts without
        ``store``; or nothing that could be ingested.
    """

    kind = source_kind(source)
    if catalog is None and kind in ("store", "shards"):
        store_info(source)  # refuses a missing file, or one that is not a complete store
        if isinstance(source, (list, tuple)):
            return [Path(p) for p in source], None
        return Path(source), None
    if isinstance(source, (str, Path)) and not any(c in str(source) for c in "*?["):
        path = Path(source)
        if not path.exists():
            msg = f"{source}: no such file or folder"
            raise FileNotFoundError(msg)
        if path.is_file() and kind == "fits" and not path.name.lower().endswith(FITS_SUFFIXES):
            msg = (
                f"{source}: neither a cutout store (.h5, .hdf5), FITS cutouts "
                f"({', '.join(FITS_SUFFIXES)}) nor a catalog with a file column (.csv, .ecsv "
                "or a FITS table)"
            )
            raise ValueError(msg)
    if store is None:
        msg = f"store: {source} holds FITS cutouts; name the store to ingest them into"
        raise ValueError(msg)
    report = ingest(source, store, catalog=catalog, progress=progress, **ingest_options)
    return Path(store), report
