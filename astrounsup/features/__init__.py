"""Features computed from the pixels by physics, with no training: blue light around a red
galaxy (strong-lens arcs) as rotation-invariant numbers, and the colour residuals they are
measured on; detectors of artefacts (straight trails, hits sharper than the PSF)."""

from astrounsup._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "arcs": ["ArcFeatures", "arc_score", "lens_light_residuals"],
        "artefacts": [
            "DETECTORS",
            "detector_scores",
            "ghost_scores",
            "ring_scores",
            "sharp_scores",
            "trail_scores",
        ],
    },
)
