"""One configurable convolutional encoder (and its mirror decoder) for every model."""

from __future__ import annotations

import math

import torch.nn.functional as F  # noqa: N812 - the PyTorch convention
from torch import nn

__all__ = ["DEFAULT_WIDTHS", "ConvDecoder", "ConvEncoder", "check_architecture"]

#: Channels of the encoder's convolution stages (the decoder mirrors them): every model's
#: default.
DEFAULT_WIDTHS = (32, 64, 128)

MIN_SIZE, MAX_SIZE = 16, 256
#: Upper bounds of a model's bands, latent dimension and layer widths: far above any survey
#: or architecture in use, low enough that a corrupt or crafted config (a checkpoint's
#: included) cannot make a model of terabytes.
MAX_BANDS, MAX_LATENT_DIM, MAX_WIDTH = 64, 4096, 2048


def _bounded_int(value, upper):
    """An int (not a bool) in [1, upper]."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= upper


def check_architecture(*, bands, size, latent_dim, widths, kind="plain"):
    """Validate a model configuration before anything is built; return the widths tuple.

    Raises
    ------
    ValueError
        Naming the parameter, what is allowed and what was given.
    """
    if not _bounded_int(bands, MAX_BANDS):
        msg = f"bands must be an integer in [1, {MAX_BANDS}]; got {bands!r}"
        raise ValueError(msg)
    if not _bounded_int(latent_dim, MAX_LATENT_DIM):
        msg = f"latent_dim must be an integer in [1, {MAX_LATENT_DIM}]; got {latent_dim!r}"
        raise ValueError(msg)
    if isinstance(widths, (str, bytes)) or not hasattr(widths, "__iter__"):
        msg = f"widths must be a sequence of integers in [1, {MAX_WIDTH}]; got {widths!r}"
        raise ValueError(msg)
    widths = tuple(widths)
    if not widths or not all(_bounded_int(w, MAX_WIDTH) for w in widths):
        msg = (
            f"widths must be a non-empty sequence of integers in [1, {MAX_WIDTH}]; got {widths!r}"
        )
        raise ValueError(msg)
    if kind not in ("plain", "resnet"):
        msg = f"kind must be 'plain' or 'resnet'; got {kind!r}"
        raise ValueError(msg)
    smallest = 2 ** len(widths) * 2
    if not (isinstance(size, int) and max(MIN_SIZE, smallest) <= size <= MAX_SIZE):
        msg = (
            f"size must be an integer in [{max(MIN_SIZE, smallest)}, {MAX_SIZE}] px for "
            f"{len(widths)} downsampling stages; got {size!r}"
        )
        raise ValueError(msg)
    return widths


def _group_norm(channels):
    # GroupNorm, not BatchNorm: per-sample statistics keep the exact per-sample Jacobian
    # of the contractive penalty and small batches well defined.
    return nn.GroupNorm(math.gcd(8, channels), channels)


class _ResBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            _group_norm(channels),
            nn.SiLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            _group_norm(channels),
        )

    def forward(self, x):
        return F.silu(x + self.body(x))


class ConvEncoder(nn.Module):
    """Strided convolutions from ``(B, bands, size, size)`` to a latent vector ``(B, D)``.

    Parameters
    ----------
    bands : int
        Input planes (any number of bands).
    size : int
        Cutout side, 16-256 px (odd sizes too).
    latent_dim : int
    widths : sequence of int, optional
        Channels of each stride-2 stage.
    kind : {"plain", "resnet"}, optional
        ``"resnet"`` adds a residual block after each stage.
    out_features : int, optional
        Width of the output layer (default ``latent_dim``; a VAE asks for ``2 * latent_dim``).
    """

    def __init__(
        self, bands, *, size, latent_dim, widths=DEFAULT_WIDTHS, kind="plain", out_features=None
    ):
        super().__init__()
        widths = check_architecture(
            bands=bands, size=size, latent_dim=latent_dim, widths=widths, kind=kind
        )
        layers, channels = [], bands
        for w in widths:
            layers += [nn.Conv2d(channels, w, 3, stride=2, padding=1), _group_norm(w), nn.SiLU()]
            if kind == "resnet":
                layers.append(_ResBlock(w))
            channels = w
        self.features = nn.Sequential(*layers)
        self.final_side = size
        for _ in widths:
            self.final_side = (self.final_side + 1) // 2
        self.head = nn.Linear(channels * self.final_side**2, out_features or latent_dim)
        self.bands, self.size, self.latent_dim = bands, size, latent_dim

    def forward(self, x):
        if x.ndim != 4 or x.shape[1:] != (self.bands, self.size, self.size):
            msg = (
                f"encoder expects (B, {self.bands}, {self.size}, {self.size}); "
                f"got {tuple(x.shape)}"
            )
            raise ValueError(msg)
        return self.head(self.features(x).flatten(1))


class ConvDecoder(nn.Module):
    """The mirror of :class:`ConvEncoder`: latent ``(B, D)`` to ``(B, bands, size, size)``.

    Each up-sampling halves the channels as the encoder's down-sampling doubles them
    (``widths[-1]`` -> ... -> ``widths[0]`` -> ``widths[0] // 2``), so the full-resolution
    layers stay narrow. Keeping ``widths[-1]`` through the first up-sampling instead makes
    the decoder most of an autoencoder's arithmetic and doubles its training time.

    The output layer is linear: fluxes are not confined to [0, 1] and sky-subtracted pixels
    are negative. ``out_bands`` may exceed ``bands`` (e.g. a per-pixel log-variance).
    """

    def __init__(self, bands, *, size, latent_dim, widths=DEFAULT_WIDTHS, kind="plain"):
        super().__init__()
        widths = check_architecture(
            bands=bands, size=size, latent_dim=latent_dim, widths=widths, kind=kind
        )
        side = size
        for _ in widths:
            side = (side + 1) // 2
        self.start_side, self.start_channels = side, widths[-1]
        self.fc = nn.Linear(latent_dim, widths[-1] * side * side)
        layers, channels = [], widths[-1]
        for w in (*reversed(widths[:-1]), max(widths[0] // 2, 1)):
            if kind == "resnet":
                layers.append(_ResBlock(channels))
            layers += [
                nn.ConvTranspose2d(channels, w, 4, stride=2, padding=1),
                _group_norm(w),
                nn.SiLU(),
            ]
            channels = w
        self.features = nn.Sequential(*layers)
        self.out = nn.Conv2d(channels, bands, 3, padding=1)
        self.size = size

    def forward(self, z):
        h = self.fc(z).view(-1, self.start_channels, self.start_side, self.start_side)
        h = self.out(self.features(h))
        # Up-sampling gives start_side * 2**stages >= size: crop the centre (odd sizes).
        extra = h.shape[-1] - self.size
        lo = extra // 2
        return h[..., lo : lo + self.size, lo : lo + self.size]
