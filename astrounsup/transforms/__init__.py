"""Astronomy-aware augmentations of calibrated multi-band cutouts, batched on any device.

Pure functions live in :mod:`astrounsup.transforms.functional`; the classes here separate
the random draw (``make_params``, from a ``torch.Generator``) from its deterministic
application (``transform``).
"""

from astrounsup._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "base": ["METADATA_UNITS", "Compose", "Transform", "gather_metadata"],
        "geometric": [
            "CenterCrop",
            "JitterCrop",
            "RandomCrop",
            "RandomRot90Flip",
            "RandomRotation",
            "RandomZoom",
            "max_rotation_size",
        ],
        "multiview": [
            "MultiView",
            "contrastive_pipeline",
            "contrastive_jitter",
            "contrastive_view_size",
            "contrastive_views",
            "denoising_pipeline",
        ],
        "photometric": [
            "Brightness",
            "FluxScale",
            "MaskPatches",
            "PoissonNoise",
            "PSFDegrade",
            "Redden",
            "SkyNoise",
            "SurveyDepth",
        ],
    },
)
