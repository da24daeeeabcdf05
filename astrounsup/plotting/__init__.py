"""Figures for a human eye: cutout pictures by one colour rule, montages and galleries,
catalogue diagrams, latent maps."""

from astrounsup._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "colour": [
            "NO_DATA_RGB",
            "band_views",
            "composite_thumbnails",
            "rgb_planes",
        ],
        "diagrams": [
            "color_magnitude_figure",
            "distinct_colours",
            "latent_map_figure",
            "loss_curve_figure",
            "main_sequence_figure",
        ],
        "montage": ["composite_rgb", "gallery", "kind_montage", "save_figure"],
    },
)
