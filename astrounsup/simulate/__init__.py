"""Seeded simulators of survey data: lens surveys of cutouts and Gaia-like stellar tables.

The bands and PSFs they observe through are those of :mod:`astrounsup.instrument`.
"""

from astrounsup._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "artefacts": [
            "bad_column",
            "bleed_columns",
            "cosmic_ray_spot",
            "cosmic_ray_track",
            "ghost_annulus",
            "nan_blob",
            "satellite_trail",
        ],
        "camera": ["calibrate", "expose", "render_moffat", "resample_noise"],
        "lensing": [
            "SIELens",
            "lens_magnification",
            "ray_trace",
            "shear_deflection",
            "sie_deflection",
            "solve_lens_equation",
        ],
        "profiles": [
            "PixelGrid",
            "render_sersic",
            "sersic_b",
            "sersic_enclosed_fraction",
            "sersic_log_norm",
        ],
        "stars": ["STAGE_PLACE", "STAGES", "gaia_absolute_magnitudes", "simulate_stars"],
        "survey": [
            "ANOMALY_KINDS",
            "NON_LENS_KINDS",
            "REALISM",
            "SimulatedSurvey",
            "simulate_lens_survey",
        ],
    },
)
