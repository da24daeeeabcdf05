"""Seeds: every simulator turns its ``seed`` argument into a SeedSequence here."""

from __future__ import annotations

import numpy as np


def seed_sequence(seed):
    """A SeedSequence from an int >= 0, a SeedSequence, or None (fresh, recorded entropy)."""
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if seed is None:
        return np.random.SeedSequence()
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and seed >= 0:
        return np.random.SeedSequence(int(seed))
    msg = f"seed must be a non-negative integer, a numpy SeedSequence or None; got {seed!r}"
    raise TypeError(msg)
