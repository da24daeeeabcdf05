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


#: Pixel scales a cutout may have, arcsec per pixel (HST's 0.03" to a 2" wide-field
#: survey, with a margin); a value outside is a unit error (degrees, say).
PIXEL_SCALE_RANGE = (0.01, 5.0)


def check_pixel_scale(pixel_scale, name="pixel_scale"):
    """``pixel_scale`` as a float, refused outside :data:`PIXEL_SCALE_RANGE` arcsec per
    pixel with a message naming the unit (and the arcsec it would be, were it degrees).

    Examples
    --------
    >>> check_pixel_scale(0.263)
    0.263
    >>> try:
    ...     check_pixel_scale(0.263 / 3600)
    ... except ValueError as err:
    ...     print(str(err).split("; ")[1])
    got 7.306e-05 (in degrees that is 0.263 arcsec: give arcsec)
    """
    lo, hi = PIXEL_SCALE_RANGE
    bad = isinstance(pixel_scale, bool) or not isinstance(pixel_scale, (int, float, np.floating,
                                                                         np.integer))  # fmt: skip
    value = float("nan") if bad else float(pixel_scale)
    if not lo <= value <= hi:
        hint = ""
        if 0 < value < lo and lo <= value * 3600 <= hi:
            hint = f" (in degrees that is {value * 3600:.4g} arcsec: give arcsec)"
        msg = (
            f"{name} must be in [{lo:g}, {hi:g}] arcsec per pixel; got {_short(pixel_scale)}{hint}"
        )
        raise ValueError(msg)
    return value


def _short(value):
    return f"{value:.4g}" if isinstance(value, (float, np.floating)) else repr(value)
