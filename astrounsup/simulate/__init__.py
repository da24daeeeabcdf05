"""Seeded simulators of survey data: lens surveys of cutouts and Gaia-like stellar tables.

The bands and PSFs they observe through are those of :mod:`astrounsup.instrument`.
"""

from astrounsup.simulate.camera import calibrate, expose, render_moffat
from astrounsup.simulate.lensing import (
    SIELens,
    lens_magnification,
    ray_trace,
    shear_deflection,
    sie_deflection,
    solve_lens_equation,
)
from astrounsup.simulate.profiles import (
    PixelGrid,
    render_sersic,
    sersic_b,
    sersic_enclosed_fraction,
    sersic_log_norm,
)
from astrounsup.simulate.stars import (
    STAGE_PLACE,
    STAGES,
    gaia_absolute_magnitudes,
    simulate_stars,
)
from astrounsup.simulate.survey import (
    ANOMALY_KINDS,
    NON_LENS_KINDS,
    SimulatedSurvey,
    simulate_lens_survey,
)

__all__ = [
    "ANOMALY_KINDS",
    "NON_LENS_KINDS",
    "STAGES",
    "STAGE_PLACE",
    "PixelGrid",
    "SIELens",
    "SimulatedSurvey",
    "calibrate",
    "expose",
    "gaia_absolute_magnitudes",
    "lens_magnification",
    "ray_trace",
    "render_moffat",
    "render_sersic",
    "sersic_b",
    "sersic_enclosed_fraction",
    "sersic_log_norm",
    "shear_deflection",
    "sie_deflection",
    "simulate_lens_survey",
    "simulate_stars",
    "solve_lens_equation",
]
