"""Subpackages that load their modules on first use (Scientific Python SPEC 1).

``import astrounsup.latent`` then costs nothing until a name is used, so the command line
can answer ``--help`` without importing PyTorch, and a notebook pays only for what it uses.
"""

from __future__ import annotations

import importlib
import sys


def _export_order(name):
    """The order ruff keeps in ``__all__``: CONSTANTS, then Classes, then functions."""
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def attach(package, exports):
    """``__getattr__``, ``__dir__`` and ``__all__`` for a package whose public names live in
    its submodules.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    exports : dict of str to sequence of str
        Submodule name -> the public names it defines.

    Returns
    -------
    getattr_, dir_, all_
        Assign them to ``__getattr__``, ``__dir__`` and ``__all__`` of the package.
    """
    home = {name: module for module, names in exports.items() for name in names}
    all_ = sorted(home, key=_export_order)

    def getattr_(name):
        if name not in home:
            msg = f"module {package!r} has no attribute {name!r}"
            raise AttributeError(msg)
        value = getattr(importlib.import_module(f"{package}.{home[name]}"), name)
        setattr(sys.modules[package], name, value)  # later lookups skip this function
        return value

    def dir_():
        return sorted(set(all_) | set(vars(sys.modules[package])))

    return getattr_, dir_, all_
