"""The browsable report of a run: colour thumbnails, an interactive latent map, galleries of
clusters, lens candidates, anomalies and look-alikes, in one static folder."""

from astrounsup._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "page": ["REPORT_DEFAULTS", "legacy_viewer_url", "write_report"],
        "thumbnails": [
            "THUMBNAIL_Q",
            "THUMBNAIL_STRETCH",
            "composite_thumbnails",
            "scale_bar_arcsec",
        ],
    },
)
