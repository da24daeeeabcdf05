"""Helpers shared by the scikit-learn estimators of `latent` and `stars`: seeds, scaling,
validation messages naming the owner, the parameter, what is allowed and what was given."""

from __future__ import annotations

import numbers

import numpy as np


def as_rng_seed(random_state):
    """An int seed (or None) for scikit-learn from an int, a Generator or None."""
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(2**31 - 1))
    if random_state is None or isinstance(random_state, numbers.Integral):
        return random_state
    msg = f"random_state must be an int, a numpy Generator or None; got {random_state!r}"
    raise ValueError(msg)


def fit_scaler(X, standardize):
    """``(scaler, scaled X)``; ``(None, X)`` without standardisation."""
    if not standardize:
        return None, X
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(X)
    return scaler, scaler.transform(X)


def check_choice(owner, name, value, allowed):
    """Raise a ValueError naming ``owner.name``, the allowed values and ``value``."""
    if value not in allowed:
        msg = f"{owner}: {name} must be one of {list(allowed)}; got {value!r}"
        raise ValueError(msg)


def check_int(owner, name, value, minimum):
    """Raise a ValueError unless ``value`` is an int >= ``minimum``."""
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not ok or value < minimum:
        msg = f"{owner}: {name} must be an integer >= {minimum}; got {value!r}"
        raise ValueError(msg)


def check_number(owner, name, value, low=None, high=None):
    """Raise a ValueError unless ``value`` is a real number in [low, high]."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value)
    if ok and low is not None and value < low:
        ok = False
    if ok and high is not None and value > high:
        ok = False
    if not ok:
        span = f" in [{low}, {high}]"
        msg = f"{owner}: {name} must be a finite number{span}; got {value!r}"
        raise ValueError(msg)
