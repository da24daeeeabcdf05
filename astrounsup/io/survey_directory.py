"""A survey directory: the HDF5 store, per-object FITS cutouts and the truth table."""

from __future__ import annotations

from pathlib import Path

from astrounsup._atomic import atomic_path
from astrounsup.io.fits import write_fits_cutouts
from astrounsup.io.hdf5 import write_store

__all__ = ["write_survey_directory"]


def write_survey_directory(
    directory, images, table, *, bands, pixel_scale, fits=True, flux_unit="nmgy"
):
    """Write a survey as ``cutouts.h5``, ``fits/<object_id>.fits`` and ``truth.ecsv``.

    Every file is written beside its final name and renamed into place when complete, so
    an interrupted call never leaves a half-written file.

    Parameters
    ----------
    directory : str or pathlib.Path
        Output directory (created if needed).
    images : numpy.ndarray of shape (n, bands, ny, nx)
    table : astropy.table.Table
        ``n`` rows with ``object_id``, ``ra``, ``dec`` and any truth columns.
    bands : sequence of str
    pixel_scale : float
        Arcsec per pixel.
    fits : bool, optional
        Also write one FITS cube per object.
    flux_unit : str, optional

    Returns
    -------
    dict of str to pathlib.Path
        The written paths, keyed ``"store"``, ``"fits"`` (if written) and ``"truth"``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    out = {
        "store": write_store(
            directory / "cutouts.h5",
            images,
            table,
            bands=bands,
            pixel_scale=pixel_scale,
            flux_unit=flux_unit,
        )
    }
    if fits:
        write_fits_cutouts(
            directory / "fits",
            images,
            table,
            bands=bands,
            pixel_scale=pixel_scale,
            flux_unit=flux_unit,
        )
        out["fits"] = directory / "fits"
    truth = directory / "truth.ecsv"
    with atomic_path(truth) as tmp:
        table.write(tmp, format="ascii.ecsv", overwrite=True)
    out["truth"] = truth
    return out
