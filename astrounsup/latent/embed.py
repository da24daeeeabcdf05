"""Latent vectors of a store's cutouts from a trained model."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import torch
from astropy.io.misc.hdf5 import write_table_hdf5
from astropy.table import QTable

from astrounsup._atomic import atomic_path
from astrounsup._provenance import provenance

__all__ = [
    "embed_dataset",
    "embed_images",
    "embed_store",
    "model_and_dataset",
    "read_latents",
    "write_latents",
]

LATENTS_FORMAT = "astrounsup.latents"


@torch.no_grad()
def embed_dataset(model, dataset, *, batch_size=256, device=None, input_size=None):
    """``model.encode`` of every cutout of ``dataset``, in order.

    Parameters
    ----------
    model : torch.nn.Module
        Any astrounsup model (all have ``encode``).
    dataset : astrounsup.io.CutoutDataset
    batch_size : int, optional
    device : str or torch.device, optional
        Default: the model's device.
    input_size : int, optional
        Centre-crop the cutouts to this side first (a SimCLR encoder trained on crops).

    Returns
    -------
    numpy.ndarray of shape (n, latent_dim), float32
    """
    from astrounsup.transforms.functional import center_crop

    device = torch.device(device) if device is not None else next(model.parameters()).device
    model = model.to(device).eval()
    out = []
    for images, _masks, _index in dataset.loader(batch_size):
        if input_size is not None and images.shape[-1] != input_size:
            images, _ = center_crop(images, input_size)
        out.append(model.encode(images.to(device)).float().cpu().numpy())
    return np.concatenate(out) if out else np.empty((0, 0), np.float32)


def write_latents(path, latents, table, *, meta=None, step="astrounsup.latent.write_latents"):
    """Write latents ``(n, D)`` and their metadata table to an HDF5 file, atomically.

    The file's attributes hold the provenance of ``step`` and then ``meta`` (plain str,
    int, float or bool values).
    """
    latents = np.asarray(latents, dtype=np.float32)
    if latents.ndim != 2 or len(latents) != len(table):
        msg = (
            f"latents must be (n, D) with one row per table row ({len(table)}); got "
            f"shape {latents.shape}"
        )
        raise ValueError(msg)
    path = Path(path)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["format"] = LATENTS_FORMAT
        f.create_dataset("latents", data=latents)
        write_table_hdf5(QTable(table), f, path="catalog", serialize_meta=True)
        for key, value in (provenance(step) | (meta or {})).items():
            f.attrs[key] = value
    return path


def read_latents(path):
    """``(latents, table, attrs)`` of a file written by :func:`write_latents`."""
    from astropy.io.misc.hdf5 import read_table_hdf5

    if not Path(path).is_file():
        msg = f"{path}: no such latents file"
        raise FileNotFoundError(msg)
    with h5py.File(path, "r") as f:
        if f.attrs.get("format") != LATENTS_FORMAT:
            msg = f"{path}: not an astrounsup latents file"
            raise ValueError(msg)
        table = QTable(read_table_hdf5(f, path="catalog"))
        table.convert_bytestring_to_unicode()
        return f["latents"][...], table, dict(f.attrs.items())


def model_and_dataset(checkpoint, data):
    """The model of ``checkpoint``, its saved settings, and ``data`` as a
    :class:`astrounsup.io.CutoutDataset` normalised as the training data was.

    Parameters
    ----------
    checkpoint : str or pathlib.Path
    data : str, pathlib.Path or numpy.ndarray
        An HDF5 store, or cutouts of shape (n, bands, ny, nx) in the training bands.

    Raises
    ------
    ValueError
        When the store's bands differ from the training bands (naming both files).
    """
    from astrounsup.io import AsinhNormalizer, CutoutDataset
    from astrounsup.training import load_model

    model, extra = load_model(checkpoint)
    if isinstance(data, np.ndarray):
        if data.ndim != 4 or data.shape[1] != len(extra["bands"]):
            msg = (
                f"cutouts must have shape (n, {len(extra['bands'])}, ny, nx) for the bands "
                f"{extra['bands']} of {checkpoint}; got {data.shape}"
            )
            raise ValueError(msg)
        dataset = CutoutDataset(data.astype(np.float32, copy=False), bands=extra["bands"])
    else:
        dataset = CutoutDataset(data)
        if list(dataset.bands) != list(extra["bands"]):
            msg = (
                f"{data}: bands {list(dataset.bands)} differ from the training bands "
                f"{extra['bands']} of {checkpoint}"
            )
            raise ValueError(msg)
    dataset.normalizer = AsinhNormalizer.from_dict(extra["normalization"])
    return model, extra, dataset


def embed_images(checkpoint, images, *, device=None):
    """Latent vectors of new cutouts ``(n, bands, ny, nx)`` (e.g. to query a
    :class:`astrounsup.latent.SimilaritySearch`), normalised as the training data.

    Returns
    -------
    numpy.ndarray of shape (n, latent_dim)
    """
    model, extra, data = model_and_dataset(checkpoint, np.asarray(images))
    return embed_dataset(model, data, device=device, input_size=extra.get("input_size"))


def embed_store(checkpoint, store, out, *, batch_size=256, device=None):
    """Embed every cutout of ``store`` with the model of ``checkpoint``; write ``out``.

    The store is normalised as the model's training data was (parameters from the
    checkpoint); bands must match the training bands.
    """
    model, extra, data = model_and_dataset(checkpoint, store)
    latents = embed_dataset(
        model, data, batch_size=batch_size, device=device, input_size=extra.get("input_size")
    )
    meta = {
        "checkpoint": str(checkpoint),
        "recipe": extra.get("recipe", ""),
        "store": str(store),
        "model_class": type(model).__name__,
    }
    return write_latents(out, latents, data.table, meta=meta)
