"""Figures for a human eye: cutout montages and galleries, catalogue diagrams, latent maps."""

from astrounsup.plotting.diagrams import (
    colour_magnitude_figure,
    latent_map_figure,
    loss_curve_figure,
    main_sequence_figure,
)
from astrounsup.plotting.montage import composite_rgb, gallery, kind_montage, save_figure

__all__ = [
    "colour_magnitude_figure",
    "composite_rgb",
    "gallery",
    "kind_montage",
    "latent_map_figure",
    "loss_curve_figure",
    "main_sequence_figure",
    "save_figure",
]
