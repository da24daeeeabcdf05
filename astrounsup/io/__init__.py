"""Reading and writing cutouts: FITS files, the HDF5 cutout store, datasets, normalisation."""

from astrounsup.io.dataset import CutoutDataset
from astrounsup.io.discover import discover_cutouts, find_fits, source_kind
from astrounsup.io.fits import (
    BAND_FILE_PATTERN,
    Cutout,
    CutoutReadError,
    cutout_header,
    group_band_files,
    read_cutout,
    read_cutout_group,
    write_fits_cutout,
    write_fits_cutouts,
)
from astrounsup.io.hdf5 import (
    STORE_FORMAT,
    STORE_VERSION,
    StoreError,
    open_store,
    read_store,
    store_info,
    write_store,
)
from astrounsup.io.ingestion import IngestReport, ingest, rejects_path
from astrounsup.io.normalize import AsinhNormalizer, border_pixels, estimate_sky
from astrounsup.io.survey import write_survey_directory

__all__ = [
    "BAND_FILE_PATTERN",
    "STORE_FORMAT",
    "STORE_VERSION",
    "AsinhNormalizer",
    "Cutout",
    "CutoutDataset",
    "CutoutReadError",
    "IngestReport",
    "StoreError",
    "border_pixels",
    "cutout_header",
    "discover_cutouts",
    "estimate_sky",
    "find_fits",
    "group_band_files",
    "ingest",
    "open_store",
    "read_cutout",
    "read_cutout_group",
    "read_store",
    "rejects_path",
    "source_kind",
    "store_info",
    "write_fits_cutout",
    "write_fits_cutouts",
    "write_store",
    "write_survey_directory",
]
