"""Result catalogs for follow-up: tables with provenance, written atomically."""

from astrounsup.catalog.table import CATALOG_FORMATS, provenance, result_catalog, write_catalog

__all__ = ["CATALOG_FORMATS", "provenance", "result_catalog", "write_catalog"]
