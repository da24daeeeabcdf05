"""The encoder shipped with the package: its weights, checked against their card."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from astrounsup._atomic import atomic_path
from astrounsup.io import as_dataset
from astrounsup.training import _weights
from astrounsup.training._weights import PRETRAINED
from astrounsup.training.fit import _check_init, fit_normalizer
from astrounsup.training.fitted import _with_model_bands

__all__ = ["PRETRAINED", "load_pretrained", "pretrained_card", "write_pretrained"]


def pretrained_card(name=PRETRAINED):
    """The card of a shipped encoder: its file's SHA-256, the bands, cutout size and pixel
    scales it takes, and the surveys and steps it was trained on.

    Parameters
    ----------
    name : str, optional
        :data:`PRETRAINED`.

    Returns
    -------
    dict
        ``sha256``, ``bands``, ``size`` (px), ``pixel_scale_range`` (arcsec/px),
        ``steps``, ``seconds``, ``settings`` and ``surveys`` (one dict per survey).

    Raises
    ------
    FileNotFoundError
        No such encoder in this installation.

    Examples
    --------
    >>> card = pretrained_card()
    >>> card["bands"], card["size"]
    (['g', 'r', 'i'], 64)
    """
    return _weights.read_card(name)


def load_pretrained(data=None, *, name=PRETRAINED, bands=None, pixel_scale=None):
    """The shipped encoder as a :class:`astrounsup.training.TrainedModel`, its weights
    checked against the SHA-256 of its card and read with ``weights_only``.

    Parameters
    ----------
    data : path, numpy.ndarray or astrounsup.io.CutoutDataset, optional
        Cutouts it will embed: the normaliser is fitted on them
        (:func:`astrounsup.training.fit_normalizer`), so each band is in its own noise
        units, as in pretraining; their bands, size and pixel scale are checked (cutouts
        with more bands give their g, r, i planes). Without it, the normaliser of the last
        pretraining survey.
    name : str, optional
        :data:`PRETRAINED`.
    bands, pixel_scale : optional
        As :func:`astrounsup.io.as_dataset` takes, for an array.

    Returns
    -------
    astrounsup.training.TrainedModel
        With ``card`` (:func:`pretrained_card`) and ``pixel_scale_range``.

    Raises
    ------
    FileNotFoundError
        No such encoder.
    ValueError
        Weights whose SHA-256 is not the card's, or data without one of its bands, of
        another size or at a pixel scale outside the range it was trained on (one line
        each).

    Examples
    --------
    >>> import numpy as np
    >>> encoder = load_pretrained()
    >>> encoder.bands, encoder.input_size
    (('g', 'r', 'i'), 36)
    >>> images = np.random.default_rng(0).normal(size=(4, 3, 64, 64)).astype("f4")
    >>> load_pretrained(images, bands="gri", pixel_scale=0.2).embed(images, progress=False).shape
    (4, 64)
    """
    encoder = _weights.load_shipped(name)
    if data is None:
        return encoder
    dataset = as_dataset(data, bands=bands, pixel_scale=pixel_scale)
    dataset = _with_model_bands(dataset, encoder.bands)  # e.g. the g, r, i of g, r, i, z, y
    _check_init(encoder, dataset, encoder.recipe)
    norm = fit_normalizer(dataset, settings=(encoder.config or {}).get("normalization"))
    encoder.normalizer = norm
    encoder.pixel_scale = float(dataset.pixel_scale)
    encoder.source = str(data) if isinstance(data, (str, Path)) else None
    return encoder


def write_pretrained(trained, *, card, name=PRETRAINED, directory=None):
    """Write ``trained`` as a shipped encoder: ``<name>.pt`` and its card ``<name>.json``
    with the file's SHA-256, both atomically.

    Parameters
    ----------
    trained : astrounsup.training.TrainedModel
    name : str, optional
    directory : path, optional
        Default: the package's ``training/weights`` folder.
    card : dict
        The rest of the card: ``size`` (px of the cutouts), ``pixel_scale_range``,
        ``steps``, ``seconds``, ``settings``, ``surveys``.

    Returns
    -------
    pathlib.Path
        The card.
    """
    weights, card_path = _weights._paths(name)
    if directory is not None:
        weights, card_path = Path(directory) / weights.name, Path(directory) / card_path.name
    trained.save(weights)
    fields = dict(card) | {
        "name": name,
        "file": weights.name,
        "sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
        "recipe": trained.recipe,
        "bands": list(trained.bands),
        "input_size": trained.input_size,
        "latent_dim": trained.latent_dim,
    }
    with atomic_path(card_path) as tmp:
        tmp.write_text(json.dumps(fields, indent=1) + "\n")
    return card_path
