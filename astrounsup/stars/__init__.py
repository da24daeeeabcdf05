"""Star tables: the stellar main sequence of a Gaia-like table as its dominant
one-dimensional manifold, with each star's place along it and off it."""

from astrounsup._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "main_sequence": [
            "BINARY_OFFSET",
            "EXTINCTION_COLUMNS",
            "GAIA_COLUMNS",
            "MEMBERSHIPS",
            "MainSequence",
            "gaia_cmd",
            "main_sequence_catalog",
        ],
    },
)
