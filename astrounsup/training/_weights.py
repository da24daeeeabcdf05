"""The shipped encoders' files: where they are, their cards, their weights checked against
the cards' SHA-256."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from astrounsup.training.fitted import TrainedModel

#: The name of the shipped encoder (SimCLR on g, r, i cutouts of 64 px).
PRETRAINED = "simclr-gri"

_WEIGHTS = Path(__file__).parent / "weights"


def _paths(name):
    if not isinstance(name, str) or not name.replace("-", "").isalnum():
        msg = f"name must be the name of a shipped encoder ({PRETRAINED!r}); got {name!r}"
        raise ValueError(msg)
    stem = name.replace("-", "_")
    return _WEIGHTS / f"{stem}.pt", _WEIGHTS / f"{stem}.json"


def read_card(name):
    """The card of shipped encoder ``name`` (see :func:`pretrained_card`)."""
    weights, card = _paths(name)
    if not card.exists() or not weights.exists():
        msg = f"no shipped encoder {name!r} in this installation ({weights} is missing)"
        raise FileNotFoundError(msg)
    return json.loads(card.read_text())


def load_shipped(name):
    """Shipped encoder ``name`` with its card, its file checked against the card's
    SHA-256 first."""
    card = read_card(name)
    weights, _ = _paths(name)
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    if digest != card["sha256"]:
        msg = (
            f"{weights}: SHA-256 {digest[:12]}... is not its card's {card['sha256'][:12]}... "
            "(a damaged or replaced file; reinstall astrounsup)"
        )
        raise ValueError(msg)
    encoder = TrainedModel.load(weights)
    encoder.card = card
    encoder.pixel_scale_range = tuple(card["pixel_scale_range"])
    return encoder
