"""Colour thumbnails of cutouts: the one colour rule of :mod:`astrounsup.plotting.colour`,
which every picture of the package follows."""

from __future__ import annotations

from astrounsup.plotting.colour import (
    THUMBNAIL_Q,
    THUMBNAIL_STRETCH,
    composite_thumbnails,
    scale_bar_arcsec,
)

__all__ = ["THUMBNAIL_Q", "THUMBNAIL_STRETCH", "composite_thumbnails", "scale_bar_arcsec"]
