"""The transform protocol: a random draw (``make_params``) and its application."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["METADATA_UNITS", "Compose", "Transform", "gather_metadata"]

#: Units in which the transforms take per-object metadata: a column with another unit is
#: converted; columns not named here (``noise_sigma``, in the cutouts' own flux unit) are
#: taken as stored.
METADATA_UNITS = {"psf_fwhm": "arcsec"}


def _check_p(p):
    if not (isinstance(p, (int, float)) and 0.0 <= p <= 1.0):
        msg = f"p must be a probability in [0, 1]; got {p!r}"
        raise ValueError(msg)
    return float(p)


def _check_range(name, value, *, low=None, strictly=False):
    try:
        lo, hi = (float(value), float(value)) if np.isscalar(value) else map(float, value)
    except (TypeError, ValueError) as err:
        msg = f"{name} must be a number or a (low, high) pair; got {value!r}"
        raise ValueError(msg) from err
    if lo > hi:
        msg = f"{name} must have low <= high; got {value!r}"
        raise ValueError(msg)
    if low is not None and (lo <= low if strictly else lo < low):
        msg = f"{name} must be {'>' if strictly else '>='} {low}; got {value!r}"
        raise ValueError(msg)
    return lo, hi


def _uniform(generator, n, lo, hi):
    return lo + (hi - lo) * torch.rand(n, generator=generator)


class Transform:
    """Base class: ``__call__`` draws parameters with :meth:`make_params` and applies them
    with :meth:`transform`, which is deterministic.

    Parameters
    ----------
    p : float, optional
        Probability, per sample, that the transform is applied, in [0, 1].

    Notes
    -----
    Call as ``images, masks = t(images, masks, generator=g, meta=meta)`` with ``images`` of
    shape ``(B, bands, ny, nx)`` on any device; ``masks`` (bool, same shape) may be None.
    ``generator`` is a CPU ``torch.Generator``: every random number, including per-pixel
    noise (seeded from it), follows from it. ``meta`` maps dataset columns to per-object
    tensors (see :func:`gather_metadata`).
    """

    #: Transforms that change the cutout size cannot be skipped per sample.
    changes_shape = False

    def __init__(self, *, p=1.0):
        self.p = _check_p(p)
        if self.changes_shape and self.p != 1.0:
            msg = f"{type(self).__name__} changes the cutout size and must have p=1; got {p}"
            raise ValueError(msg)

    def _apply_mask(self, generator, n):
        if self.p == 1.0:
            return torch.ones(n, dtype=torch.bool)
        return torch.rand(n, generator=generator) < self.p

    def make_params(self, images, *, generator=None, meta=None):
        """Draw the per-sample parameters for ``images``; returns a dict of CPU tensors."""
        return {"apply": self._apply_mask(generator, images.shape[0])}

    def transform(self, images, masks, params, meta=None):
        """Apply drawn ``params`` to ``images`` and ``masks`` (bool, or None for nothing
        masked); returns ``(images, masks)``."""
        raise NotImplementedError

    def __call__(self, images, masks=None, *, generator=None, meta=None):
        images, masks = self._apply(images, masks, generator=generator, meta=meta)
        if masks is None:
            masks = torch.zeros(images.shape, dtype=torch.bool, device=images.device)
        return images, masks

    def _apply(self, images, masks, *, generator=None, meta=None):
        """``__call__`` without the final mask: ``None`` stands for "nothing masked" until
        a transform masks something, which saves allocating and scanning empty masks."""
        if not isinstance(images, torch.Tensor) or images.ndim != 4:
            shape = tuple(getattr(images, "shape", ()))
            msg = f"images must be a tensor of shape (B, bands, ny, nx); got {shape}"
            raise ValueError(msg)
        if masks is not None and masks.shape != images.shape:
            msg = (
                f"masks must have the shape of images {tuple(images.shape)}; "
                f"got {tuple(masks.shape)}"
            )
            raise ValueError(msg)
        params = self.make_params(images, generator=generator, meta=meta)
        return self.transform(images, masks, params, meta)

    @staticmethod
    def _select(apply, new, old):
        """Per-sample choice between the transformed and the original batch."""
        if bool(apply.all()):
            return new
        return torch.where(apply.to(new.device)[:, None, None, None], new, old)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


class Compose(Transform):
    """Apply transforms in order, with one generator and the same metadata.

    Parameters
    ----------
    transforms : sequence of Transform
    """

    def __init__(self, transforms):
        self.transforms = list(transforms)
        for k, t in enumerate(self.transforms):
            if not isinstance(t, Transform):
                msg = (
                    f"Compose takes astrounsup transforms (Transform subclasses); member {k} "
                    f"is a {type(t).__name__}: {t!r}"
                )
                raise TypeError(msg)
        super().__init__()

    def _apply(self, images, masks, *, generator=None, meta=None):
        for t in self.transforms:
            images, masks = t._apply(images, masks, generator=generator, meta=meta)
        return images, masks

    def __repr__(self):
        inner = ",\n    ".join(repr(t) for t in self.transforms)
        return f"Compose([\n    {inner},\n])"


def gather_metadata(table, index, columns, *, units=None):
    """Per-object parameters for a batch from a dataset's metadata table.

    Parameters
    ----------
    table : astropy.table.Table
        E.g. ``CutoutDataset.table``.
    index : sequence of int or torch.Tensor
        The batch's rows (the third element of a dataset batch).
    columns : sequence of str
        Columns to take; those the table lacks are left out, so transforms fall back to
        their constants.
    units : dict of str to str or astropy.units.Unit, optional
        The unit each column is wanted in, over :data:`METADATA_UNITS` (``psf_fwhm`` in
        arcsec). A column with a unit is converted to it; a column without one is taken
        to be in it already; columns with no wanted unit are taken as stored.

    Returns
    -------
    dict of str to torch.Tensor
        float32 tensors of shape (B,) or (B, bands).

    Raises
    ------
    ValueError
        A column whose unit cannot be converted to the wanted one (naming both).

    Examples
    --------
    >>> import astropy.units as u
    >>> from astropy.table import QTable
    >>> t = QTable({"psf_fwhm": [[1.0, 2.0], [0.5, 0.5]] * u.arcmin / 60})
    >>> gather_metadata(t, [1, 0], ["psf_fwhm"])["psf_fwhm"].tolist()
    [[0.5, 0.5], [1.0, 2.0]]
    """
    import astropy.units as u

    wanted = METADATA_UNITS | dict(units or {})
    rows = np.asarray(index.cpu() if isinstance(index, torch.Tensor) else index)
    out = {}
    for col in columns:
        if col not in table.colnames:
            continue
        column = table[col]
        if col in wanted and getattr(column, "unit", None) is not None:
            try:
                values = u.Quantity(column).to_value(wanted[col])
            except u.UnitConversionError as err:
                msg = (
                    f"metadata column {col!r} is in {column.unit}, which does not convert "
                    f"to {wanted[col]}"
                )
                raise ValueError(msg) from err
        else:
            values = np.asarray(getattr(column, "value", column))
        out[col] = torch.as_tensor(np.asarray(values)[rows].astype(np.float32))
    return out
