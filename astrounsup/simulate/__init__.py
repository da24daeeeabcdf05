"""Seeded simulators of survey data: lens surveys of cutouts and Gaia-like stellar tables."""

from astrounsup.simulate.instrument import (
    BANDS,
    Band,
    calibrate,
    convolve_psf,
    expose,
    flux_to_mag,
    kernel_half_width,
    mag_to_flux,
    moffat_alpha,
    moffat_kernel,
    render_moffat,
)
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
    "BANDS",
    "NON_LENS_KINDS",
    "STAGES",
    "STAGE_PLACE",
    "Band",
    "PixelGrid",
    "SIELens",
    "SimulatedSurvey",
    "calibrate",
    "convolve_psf",
    "expose",
    "flux_to_mag",
    "gaia_absolute_magnitudes",
    "kernel_half_width",
    "lens_magnification",
    "mag_to_flux",
    "moffat_alpha",
    "moffat_kernel",
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
