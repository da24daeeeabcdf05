"""Result catalogs for follow-up: tables with provenance, written atomically."""

from astrounsup._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "grades": [
            "GRADE_COLUMNS",
            "GRADE_KINDS",
            "MAX_GRADES_BYTES",
            "grade_labels",
            "grades_table",
            "read_grades",
            "run_id",
        ],
        "table": [
            "CATALOG_FORMATS",
            "id_positions",
            "provenance",
            "result_catalog",
            "write_catalog",
        ],
    },
)
