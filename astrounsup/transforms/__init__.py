"""Astronomy-aware augmentations of calibrated multi-band cutouts, batched on any device.

Pure functions live in :mod:`astrounsup.transforms.functional`; the classes here separate
the random draw (``make_params``, from a ``torch.Generator``) from its deterministic
application (``transform``).
"""

from astrounsup.transforms import functional
from astrounsup.transforms.base import Compose, Transform, gather_metadata
from astrounsup.transforms.geometric import (
    CenterCrop,
    JitterCrop,
    RandomCrop,
    RandomRot90Flip,
    RandomRotation,
    RandomZoom,
    max_rotation_size,
)
from astrounsup.transforms.multiview import (
    MultiView,
    contrastive_pipeline,
    contrastive_view_size,
    contrastive_views,
    denoising_pipeline,
)
from astrounsup.transforms.photometric import (
    Brightness,
    FluxScale,
    MaskPatches,
    PoissonNoise,
    PSFDegrade,
    Redden,
    SkyNoise,
)

__all__ = [
    "Brightness",
    "CenterCrop",
    "Compose",
    "FluxScale",
    "JitterCrop",
    "MaskPatches",
    "MultiView",
    "PSFDegrade",
    "PoissonNoise",
    "RandomCrop",
    "RandomRot90Flip",
    "RandomRotation",
    "RandomZoom",
    "Redden",
    "SkyNoise",
    "Transform",
    "contrastive_pipeline",
    "contrastive_view_size",
    "contrastive_views",
    "denoising_pipeline",
    "functional",
    "gather_metadata",
    "max_rotation_size",
]
