"""Reading and writing cutouts: FITS files and the HDF5 cutout store."""

from astrounsup.io.fits import cutout_header, write_fits_cutout, write_fits_cutouts
from astrounsup.io.hdf5 import STORE_FORMAT, STORE_VERSION, StoreError, read_store, write_store
from astrounsup.io.survey import write_survey_directory

__all__ = [
    "STORE_FORMAT",
    "STORE_VERSION",
    "StoreError",
    "cutout_header",
    "read_store",
    "write_fits_cutout",
    "write_fits_cutouts",
    "write_store",
    "write_survey_directory",
]
