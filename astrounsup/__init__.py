"""astrounsup: deep unsupervised learning on astronomical survey cutouts."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("astrounsup")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
