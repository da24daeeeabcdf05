"""Colour thumbnails of cutouts: the one colour rule of :mod:`astrounsup.plotting.colour`,
which every picture of the package follows."""

from __future__ import annotations

from astrounsup.plotting import colour
from astrounsup.plotting.colour import composite_thumbnails, scale_bar_arcsec

__all__ = ["THUMBNAIL_Q", "THUMBNAIL_STRETCH", "composite_thumbnails", "scale_bar_arcsec"]

#: Linear range of the asinh stretch of :func:`composite_thumbnails`, in sky-noise units.
THUMBNAIL_STRETCH = colour.THUMBNAIL_STRETCH
#: Softening of the asinh stretch (Lupton et al. 2004); larger compresses bright cores more.
THUMBNAIL_Q = colour.THUMBNAIL_Q
