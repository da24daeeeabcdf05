"""Reading and writing cutouts: FITS files, the HDF5 cutout store, datasets, normalisation."""

from astrounsup._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "dataset": ["CutoutDataset", "as_dataset"],
        "discover": [
            "FITS_SUFFIXES",
            "discover_cutouts",
            "find_fits",
            "read_catalog",
            "read_entry",
            "source_kind",
        ],
        "fits": [
            "BAND_FILE_PATTERN",
            "Cutout",
            "CutoutReadError",
            "cutout_header",
            "group_band_files",
            "read_cutout",
            "read_cutout_group",
            "write_fits_cutout",
            "write_fits_cutouts",
        ],
        "hdf5": [
            "COMPRESSIONS",
            "MAX_BAD_FRACTION",
            "STORE_FORMAT",
            "STORE_VERSION",
            "StoreError",
            "bad_pixel_flags",
            "open_store",
            "write_store",
        ],
        "ingestion": ["IngestReport", "ingest", "rejects_path"],
        "shards": [
            "MANIFEST",
            "SHARDS_FORMAT",
            "is_sharded",
            "shard_name",
            "shard_paths",
            "write_manifest",
        ],
        "normalize": ["AsinhNormalizer"],
        "stores": ["read_store", "store_info", "verify_store"],
        "survey_directory": ["write_survey_directory"],
    },
)
