"""Geometric augmentations: rotations, flips, crops and flux-conserving zoom."""

from __future__ import annotations

import math

import torch

from astrounsup.transforms import functional as tf
from astrounsup.transforms.base import Transform, _check_range, _uniform

__all__ = [
    "CenterCrop",
    "JitterCrop",
    "RandomCrop",
    "RandomRot90Flip",
    "RandomRotation",
    "RandomZoom",
    "max_rotation_size",
]


class RandomRot90Flip(Transform):
    """A random element of the dihedral group: 90-degree turns and a mirror (lossless).

    Examples
    --------
    >>> t = RandomRot90Flip()
    >>> x = torch.arange(2 * 16.0).reshape(2, 1, 4, 4)
    >>> y, m = t(x, generator=torch.Generator().manual_seed(0))
    >>> bool(torch.equal(y.sum(dim=(2, 3)), x.sum(dim=(2, 3))))
    True
    """

    def make_params(self, images, *, generator=None, meta=None):
        n = images.shape[0]
        apply = self._apply_mask(generator, n)
        k = torch.randint(0, 4, (n,), generator=generator) * apply
        mirror = (torch.rand(n, generator=generator) < 0.5) & apply
        return {"k": k, "mirror": mirror}

    def transform(self, images, masks, params, meta=None):
        images, masks = tf.flip(images, params["mirror"].to(images.device), False, masks=masks)
        return tf.rot90(images, params["k"].to(images.device), masks=masks)


class RandomRotation(Transform):
    """Rotation by a random angle, then the central crop that holds no empty corner.

    With ``mirror`` and ``max_shift`` it also mirrors half the samples and moves the crop
    by up to ``max_shift`` pixels: rotation, flip and jitter crop in one resampling, so
    the noise is interpolated once.

    Parameters
    ----------
    degrees : (float, float), optional
        Range of angles, counter-clockwise.
    size : int, optional
        Output side; default ``floor(side / sqrt(2)) - 2 * max_shift``.
    interpolation : {"bilinear", "bicubic"}
    mirror : bool, optional
    max_shift : int, optional
        Largest shift of the crop, pixels.
    """

    changes_shape = True

    def __init__(
        self,
        degrees=(0.0, 360.0),
        *,
        size=None,
        interpolation="bilinear",
        mirror=False,
        max_shift=0,
    ):
        self.degrees = _check_range("degrees", degrees)
        if interpolation not in ("bilinear", "bicubic"):
            msg = f"interpolation must be 'bilinear' or 'bicubic'; got {interpolation!r}"
            raise ValueError(msg)
        if size is not None and not (isinstance(size, int) and size > 0):
            msg = f"size must be a positive integer; got {size!r}"
            raise ValueError(msg)
        if not (isinstance(max_shift, int) and max_shift >= 0):
            msg = f"max_shift must be an integer >= 0 pixels; got {max_shift!r}"
            raise ValueError(msg)
        self.size = size
        self.interpolation = interpolation
        self.mirror = bool(mirror)
        self.max_shift = max_shift
        super().__init__()

    def make_params(self, images, *, generator=None, meta=None):
        n = images.shape[0]
        params = {"angle": _uniform(generator, n, *self.degrees)}
        params["mirror"] = (torch.rand(n, generator=generator) < 0.5) & self.mirror
        k = self.max_shift
        params["shift"] = torch.randint(-k, k + 1, (n, 2), generator=generator).float()
        return params

    def transform(self, images, masks, params, meta=None):
        size = self.size
        if size is None:
            size = max_rotation_size(min(images.shape[-2:])) - 2 * self.max_shift
        return tf.rotate(
            images,
            params["angle"].to(images.device),
            size=size,
            interpolation=self.interpolation,
            masks=masks,
            mirror=params["mirror"].to(images.device),
            shift=params["shift"].to(images.device),
        )


class _SizedCrop(Transform):
    changes_shape = True

    def __init__(self, size):
        if not (isinstance(size, int) and size > 0):
            msg = f"size must be a positive integer; got {size!r}"
            raise ValueError(msg)
        self.size = size
        super().__init__()


class RandomCrop(_SizedCrop):
    """A ``size x size`` crop at a random position.

    Parameters
    ----------
    size : int
        Side of the crop, px, at most the cutouts' side.
    """

    def _limits(self, images):
        ny, nx = images.shape[-2:]
        if self.size > min(ny, nx):
            msg = f"crop size {self.size} is larger than the {ny}x{nx} cutouts"
            raise ValueError(msg)
        return ny - self.size, nx - self.size

    def make_params(self, images, *, generator=None, meta=None):
        max_top, max_left = self._limits(images)
        n = images.shape[0]
        return {
            "top": torch.randint(0, max_top + 1, (n,), generator=generator),
            "left": torch.randint(0, max_left + 1, (n,), generator=generator),
        }

    def transform(self, images, masks, params, meta=None):
        return tf.crop(
            images,
            params["top"].to(images.device),
            params["left"].to(images.device),
            self.size,
            masks=masks,
        )


class CenterCrop(_SizedCrop):
    """The central ``size x size`` pixels (deterministic).

    Parameters
    ----------
    size : int
        Side of the crop, px, at most the cutouts' side.
    """

    def make_params(self, images, *, generator=None, meta=None):
        return {}

    def transform(self, images, masks, params, meta=None):
        return tf.center_crop(images, self.size, masks=masks)


class JitterCrop(Transform):
    """A crop of side ``side - 2 * max_shift`` whose centre is shifted by up to
    ``max_shift`` pixels in x and y: the object stays near, not at, the centre."""

    changes_shape = True

    def __init__(self, max_shift):
        if not (isinstance(max_shift, int) and max_shift >= 0):
            msg = f"max_shift must be an integer >= 0 pixels; got {max_shift!r}"
            raise ValueError(msg)
        self.max_shift = max_shift
        super().__init__()

    def make_params(self, images, *, generator=None, meta=None):
        n, k = images.shape[0], self.max_shift
        if 2 * k >= min(images.shape[-2:]):
            msg = f"max_shift {k} leaves nothing of the {tuple(images.shape[-2:])} cutouts"
            raise ValueError(msg)
        return {
            "dy": torch.randint(-k, k + 1, (n,), generator=generator),
            "dx": torch.randint(-k, k + 1, (n,), generator=generator),
        }

    def transform(self, images, masks, params, meta=None):
        ny, nx = images.shape[-2:]
        k = self.max_shift
        size = (ny - 2 * k, nx - 2 * k)
        return tf.crop(
            images,
            (k + params["dy"]).to(images.device),
            (k + params["dx"]).to(images.device),
            size,
            masks=masks,
        )


class RandomZoom(Transform):
    """Magnify by a random factor in ``scale`` (e.g. 0.9-1.1), conserving flux."""

    def __init__(self, scale=(0.9, 1.1), *, p=1.0):
        self.scale = _check_range("scale", scale, low=0.0, strictly=True)
        super().__init__(p=p)

    def make_params(self, images, *, generator=None, meta=None):
        n = images.shape[0]
        apply = self._apply_mask(generator, n)
        scale = _uniform(generator, n, *self.scale)
        return {"scale": torch.where(apply, scale, torch.ones_like(scale))}

    def transform(self, images, masks, params, meta=None):
        out, m = tf.zoom(images, params["scale"].to(images.device), masks=masks)
        return out, m


def max_rotation_size(side):
    """Largest crop that a rotation by any angle of a ``side`` cutout fills completely."""
    return math.floor(side / math.sqrt(2))
