"""Figures for a human eye: cutout montages and catalogue diagrams."""

from astrounsup.plotting.diagrams import colour_magnitude_figure, loss_curve_figure
from astrounsup.plotting.montage import composite_rgb, kind_montage, save_figure

__all__ = [
    "colour_magnitude_figure",
    "composite_rgb",
    "kind_montage",
    "loss_curve_figure",
    "save_figure",
]
