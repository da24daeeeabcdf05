"""FITS cutouts: one file per object holding a ``(bands, ny, nx)`` cube with a TAN WCS."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from astropy.io import fits

from astrounsup._atomic import atomic_directory, atomic_path

__all__ = ["cutout_header", "write_fits_cutout", "write_fits_cutouts"]

_SAFE_NAME = re.compile(r"[A-Za-z0-9._+-]+")


def cutout_header(*, ra, dec, shape, bands, pixel_scale, flux_unit="nmgy", extra=None):
    """FITS header of a cutout cube centred on ``(ra, dec)``.

    Parameters
    ----------
    ra, dec : float
        Centre of the cutout, degrees (ICRS).
    shape : tuple of int
        ``(bands, ny, nx)``.
    bands : sequence of str
        Band of each plane; written as ``BAND1``, ``BAND2``, ... and ``BANDS``.
    pixel_scale : float
        Arcsec per pixel; north up, east left.
    flux_unit : str, optional
        ``BUNIT``.
    extra : dict, optional
        More keywords, ``{name: value}`` or ``{name: (value, comment)}``.

    Returns
    -------
    astropy.io.fits.Header
    """
    _, ny, nx = shape
    h = fits.Header()
    h["WCSAXES"] = (3, "celestial axes 1-2; axis 3 is the band index")
    h["CTYPE1"] = "RA---TAN"
    h["CTYPE2"] = "DEC--TAN"
    h["CTYPE3"] = "BAND"
    h["CUNIT1"] = "deg"
    h["CUNIT2"] = "deg"
    h["CRVAL1"] = float(ra)
    h["CRVAL2"] = float(dec)
    h["CRVAL3"] = 1.0
    # FITS pixels are 1-based; the centre of an n-pixel axis is (n + 1) / 2.
    h["CRPIX1"] = (nx + 1) / 2
    h["CRPIX2"] = (ny + 1) / 2
    h["CRPIX3"] = 1.0
    h["CD1_1"] = -pixel_scale / 3600.0
    h["CD1_2"] = 0.0
    h["CD2_1"] = 0.0
    h["CD2_2"] = pixel_scale / 3600.0
    h["CD3_3"] = 1.0
    h["RADESYS"] = "ICRS"
    h["BUNIT"] = flux_unit
    h["PIXSCALE"] = (float(pixel_scale), "[arcsec] pixel scale")
    h["BANDS"] = (",".join(bands), "band of each plane, in order")
    for j, b in enumerate(bands, start=1):
        h[f"BAND{j}"] = (b, f"band of plane {j}")
    for key, value in (extra or {}).items():
        h[key] = value
    return h


def write_fits_cutout(path, image, header):
    """Write one cube ``(bands, ny, nx)`` as float32 to ``path``, atomically."""
    hdu = fits.PrimaryHDU(np.asarray(image, dtype=np.float32), header=header)
    with atomic_path(path) as tmp:
        hdu.writeto(tmp, overwrite=True)
    return Path(path)


def write_fits_cutouts(
    directory,
    images,
    table,
    *,
    bands,
    pixel_scale,
    flux_unit="nmgy",
    per_band_columns=("psf_fwhm", "noise_sigma"),
):
    """Write one FITS file per row of ``table`` into ``directory``, as ``<object_id>.fits``.

    The directory is assembled beside its final place and moved there only once every file
    is written, so an interrupted call leaves no partial directory behind.

    Parameters
    ----------
    directory : str or pathlib.Path
        Output directory (replaced if it exists).
    images : numpy.ndarray of shape (n, bands, ny, nx)
    table : astropy.table.Table
        Rows with ``object_id``, ``ra`` and ``dec`` (degrees).
    bands : sequence of str
    pixel_scale : float
        Arcsec per pixel.
    flux_unit : str, optional
    per_band_columns : sequence of str, optional
        Columns of shape ``(n, bands)`` written as numbered keywords (``PSFFWHM1``, ...).

    Returns
    -------
    list of pathlib.Path
    """
    import astropy.units as u

    directory = Path(directory)
    ids = [str(oid) for oid in table["object_id"]]
    for oid in ids:
        if not _SAFE_NAME.fullmatch(oid):
            msg = (
                f"object_id {oid!r} cannot name a FITS file: use letters, digits, '.', '_', "
                "'+' and '-' only"
            )
            raise ValueError(msg)
    if len(set(ids)) != len(ids):
        msg = "table has duplicate object_id values; each object needs its own FITS file"
        raise ValueError(msg)
    if len(ids) != len(images):
        msg = f"table has {len(ids)} rows but there are {len(images)} images"
        raise ValueError(msg)
    keys = {"psf_fwhm": "PSFFWHM", "noise_sigma": "SKYSIG"}
    ra = u.Quantity(table["ra"], u.deg).value
    dec = u.Quantity(table["dec"], u.deg).value
    written = []
    with atomic_directory(directory) as tmp:
        for i, row in enumerate(table):
            oid = str(row["object_id"])
            extra = {"OBJECT": oid, "ORIGIN": "astrounsup"}
            for col in per_band_columns:
                if col in table.colnames:
                    vals = np.atleast_1d(u.Quantity(row[col]).value)
                    unit = getattr(table[col], "unit", None)
                    for j, v in enumerate(vals, start=1):
                        extra[f"{keys.get(col, col[:7].upper())}{j}"] = (
                            float(v),
                            f"[{unit}] {col} in band {bands[j - 1]}",
                        )
            header = cutout_header(
                ra=ra[i],
                dec=dec[i],
                shape=images.shape[1:],
                bands=bands,
                pixel_scale=pixel_scale,
                flux_unit=flux_unit,
                extra=extra,
            )
            fits.PrimaryHDU(np.asarray(images[i], dtype=np.float32), header=header).writeto(
                tmp / f"{oid}.fits"
            )
            written.append(directory / f"{oid}.fits")
    return written
