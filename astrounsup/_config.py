"""Step configs: defaults in one place, partial configs merged over them, unknown keys
refused by name."""

from __future__ import annotations

import copy


def merge_config(defaults, config, *, owner):
    """``config`` (a dict, or None) merged over a copy of ``defaults``.

    Raises
    ------
    ValueError
        For a key ``defaults`` lacks, naming ``owner``, the key and the allowed keys.
    """
    out = copy.deepcopy(defaults)
    if config is None:
        return out
    if not isinstance(config, dict):
        msg = f"{owner}: config must be a dict of settings; got {config!r}"
        raise ValueError(msg)
    unknown = sorted(set(config) - set(defaults))
    if unknown:
        msg = f"{owner}: unknown settings {unknown}; allowed: {sorted(defaults)}"
        raise ValueError(msg)
    out.update(copy.deepcopy(config))
    return out
