"""Small FITS layouts built in tmp_path, from the seeded survey."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from astropy.io import fits

from astrounsup.io import cutout_header


@pytest.fixture
def cube_files(small_survey, tmp_path):
    """Six one-object cube files with WCS, as `astrounsup simulate` writes them."""
    from astrounsup.io import write_fits_cutouts

    s = small_survey
    paths = write_fits_cutouts(
        tmp_path / "cubes", s.images[:6], s.table[:6], bands=s.bands, pixel_scale=s.pixel_scale
    )
    return paths


def write_band_files(directory, survey, rows, *, suffix=".fits"):
    """One single-band file per object and band: <id>_<band>.fits with FILTER set."""
    directory.mkdir(parents=True, exist_ok=True)
    for i in rows:
        oid = survey.table["object_id"][i]
        header = cutout_header(
            ra=survey.table["ra"][i].value,
            dec=survey.table["dec"][i].value,
            shape=(1, 64, 64),
            bands=["x"],
            pixel_scale=0.263,
        )
        for header_key in ("WCSAXES", "CTYPE3", "CRVAL3", "CRPIX3", "CD3_3", "BANDS", "BAND1"):
            del header[header_key]
        for j, band in enumerate(survey.bands):
            h = header.copy()
            h["FILTER"] = band
            fits.PrimaryHDU(survey.images[i, j], header=h).writeto(
                directory / f"{oid}_{band}{suffix}"
            )
    return directory


@pytest.fixture
def band_dir(small_survey, tmp_path):
    return write_band_files(tmp_path / "bands", small_survey, range(4))


def mef(path, planes, *, names=None, key="EXTNAME", header=None):
    hdus = [fits.PrimaryHDU(header=header)]
    for k, plane in enumerate(planes):
        h = fits.ImageHDU(plane)
        if names is not None:
            h.header[key] = names[k]
        hdus.append(h)
    fits.HDUList(hdus).writeto(path)
    return path


def image_stack(rng, n=3, shape=(16, 16)):
    return rng.normal(0.0, 1.0, (n, *shape)).astype(np.float32)


@pytest.fixture
def messy_dir(small_survey, cube_files, tmp_path):
    """Good cubes plus one of each kind of bad file."""
    d = tmp_path / "messy"
    shutil.copytree(cube_files[0].parent, d)
    good = sorted(d.iterdir())
    data = good[0].read_bytes()
    (d / "zz_truncated.fits").write_bytes(data[: len(data) // 2])
    (d / "zz_empty.fits").write_bytes(b"")
    fits.PrimaryHDU(np.arange(5.0)).writeto(d / "zz_spectrum.fits")
    fits.PrimaryHDU(
        np.ones((3, 32, 32), np.float32), header=fits.Header({"BANDS": "g,r,i"})
    ).writeto(d / "zz_small.fits")
    fits.PrimaryHDU(
        np.full((3, 64, 64), np.nan, np.float32), header=fits.Header({"BANDS": "g,r,i"})
    ).writeto(d / "zz_nan.fits")
    return d
