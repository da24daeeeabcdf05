"""What each model minimises, as ``objective(model, images, masks, generator) -> dict``."""

from __future__ import annotations

from astrounsup.models import VAE, draw_holes

__all__ = [
    "contrastive_objective",
    "denoising_objective",
    "inpainting_objective",
    "reconstruction_objective",
    "rotation_objective",
]


def _unwrap(model):
    return getattr(model, "module", model)


def reconstruction_objective(model, images, masks, generator):
    """``model.loss(images, masks)``: autoencoders (sparse, contractive) and VAEs."""

    model = _unwrap(model)
    if isinstance(model, VAE):  # its loss draws from the posterior
        return model.loss(images, masks, generator=generator)
    return model.loss(images, masks)


def inpainting_objective(model, images, masks, generator):
    """Hide random patches (the model's ``holes`` and ``hole_size``) and predict them:
    :class:`astrounsup.models.ContextEncoder`."""

    net = _unwrap(model)
    holes = draw_holes(images.shape, count=net.holes, size=net.hole_size, generator=generator,
                       device=images.device)  # fmt: skip
    return net.loss(images, masks, holes=holes)


def denoising_objective(corrupt):
    """Reconstruct the clean batch from ``corrupt(images, masks, generator=...)``."""

    def objective(model, images, masks, generator):
        noisy, noisy_masks = corrupt(images, masks, generator=generator)
        return _unwrap(model).loss(noisy, noisy_masks, target=images)

    return objective


def contrastive_objective(views):
    """NT-Xent of two augmented views, ``views(images, masks, generator=...)``."""

    def objective(model, images, masks, generator):
        (a, _), (b, _) = views(images, masks, generator=generator)
        return _unwrap(model).loss(a, b)

    return objective


def rotation_objective(model, images, masks, generator):
    """Predict the quarter turn applied to each cutout."""
    return _unwrap(model).loss(images, generator=generator)
