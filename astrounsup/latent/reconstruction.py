"""Anomaly scores from a trained model: reconstruction errors and the VAE's negative ELBO.

What the model cannot rebuild is what it has not seen: trails, cosmic rays, ghosts. These
run the model (:mod:`astrounsup.training`); :mod:`astrounsup.latent.anomaly` ranks and
combines their output with the scorers of the latent space.
"""

from __future__ import annotations

import numpy as np
import torch

from astrounsup._devices import model_device
from astrounsup._estimators import check_choice, check_int
from astrounsup._progress import progress_bar
from astrounsup.io import AsinhNormalizer
from astrounsup.models import VAE, ContextEncoder, ReconstructionModel
from astrounsup.training import TrainedModel

__all__ = [
    "LINE_STEP",
    "RECONSTRUCTION_REDUCTIONS",
    "inpainting_scores",
    "model_scores",
    "negative_elbo",
    "reconstruction_error",
]

#: Reductions of :func:`reconstruction_error`.
RECONSTRUCTION_REDUCTIONS = ("mean", "max", "extended")


@torch.no_grad()
def reconstruction_error(
    model,
    dataset,
    *,
    batch_size=256,
    device=None,
    reduction="mean",
    smoothing=5,
    units="normalized",
):
    """Squared reconstruction error per object over its unmasked pixels.

    Parameters
    ----------
    model : astrounsup.models.ReconstructionModel
        An autoencoder or a VAE; its deterministic ``reconstruct`` (a VAE's decoded
        posterior mean) is compared with the input.
    dataset : astrounsup.io.CutoutDataset
        Normalised as the model's training data.
    batch_size : int, optional
    device : str or torch.device, optional
    reduction : {"mean", "max", "extended"}, optional
        ``mean``: the mean over pixels and bands (extended anomalies: trails, ghosts);
        ``max``: the largest of any one pixel, which compact artefacts such as cosmic rays
        raise while the mean dilutes them; ``extended``: the residual averaged over the
        bands and over ``smoothing`` x ``smoothing`` pixel windows, then squared and
        averaged over the windows. Faint extended light (reflection ghosts, scattered
        light, faint trails) lies below the noise in every pixel, so ``mean`` barely sees
        it; averaging ``smoothing**2`` pixels and the bands shrinks the noise by
        ``smoothing * sqrt(bands)`` and keeps the light.
    smoothing : int, optional
        Side of the averaging window of ``reduction="extended"``, pixels; odd, >= 1 and
        at most the cutout side. Windows are cut by the cutout's edge, and masked pixels
        are left out of their window's average.
    units : {"normalized", "noise"}, optional
        ``noise``: each residual divided by its pixel's sky noise (the dataset's
        :class:`astrounsup.io.AsinhNormalizer`), so the errors are chi-squares that mean
        the same for a deep and a shallow cutout; ``extended`` then sums the residuals over
        the window and bands and scales the sum to unit variance.

    Returns
    -------
    numpy.ndarray of shape (n,), float64
        In normalised units squared, or in noise units squared; NaN for an object with
        every pixel masked.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from astrounsup.io import CutoutDataset
    >>> from astrounsup.models import ConvAutoencoder
    >>> images = np.random.default_rng(0).normal(size=(4, 2, 16, 16)).astype("float32")
    >>> model = ConvAutoencoder(2, size=16, latent_dim=4, widths=(4, 8))
    >>> err = reconstruction_error(model, CutoutDataset(images), reduction="extended")
    >>> err.shape
    (4,)
    """

    owner = "reconstruction_error"
    check_choice(owner, "reduction", reduction, RECONSTRUCTION_REDUCTIONS)
    check_choice(owner, "units", units, ("normalized", "noise"))
    if units == "noise" and not isinstance(dataset.normalizer, AsinhNormalizer):
        msg = f"{owner}: units='noise' needs a dataset normalised by an AsinhNormalizer"
        raise ValueError(msg)
    _check_reconstructs(owner, model)
    _check_smoothing(owner, smoothing, dataset)
    errors = _reconstruction_errors(
        model, dataset, (reduction,), batch_size, device, smoothing, units=units
    )
    return errors[reduction]


def _check_reconstructs(owner, model, where=None):

    if not isinstance(model, ReconstructionModel):
        msg = (
            f"{owner}: a {type(model).__name__} has no decoder, so no reconstruction error"
            f"{f' ({where})' if where else ''}; use an autoencoder or VAE"
        )
        raise ValueError(msg)


def _check_smoothing(owner, smoothing, dataset):
    check_int(owner, "smoothing", smoothing, 1)
    side = int(dataset[0][0].shape[-1]) if len(dataset) else smoothing
    if smoothing % 2 == 0 or smoothing > side:
        msg = f"{owner}: smoothing must be an odd integer in [1, {side}] (px); got {smoothing!r}"
        raise ValueError(msg)


def _window_mean(r, keep, smoothing):
    """Band- and window-averaged residual of unmasked pixels, (B, 1, H, W), and whether
    each window holds any unmasked pixel, (B, 1, H, W)."""
    pad = smoothing // 2
    band_keep = keep.sum(1, keepdim=True)
    num = torch.nn.functional.avg_pool2d(
        r.sum(1, keepdim=True), smoothing, stride=1, padding=pad, count_include_pad=False
    )
    den = torch.nn.functional.avg_pool2d(
        band_keep, smoothing, stride=1, padding=pad, count_include_pad=False
    )
    ok = den > 0
    return torch.where(ok, num / den.clamp(min=1e-12), 0.0), ok


def _window_chi(r, keep, smoothing):
    """Noise-unit residuals ``r`` summed over the bands and ``smoothing`` x ``smoothing``
    windows and divided by the square root of the pixels summed: unit variance for white
    noise. Returns it and whether each window holds any unmasked pixel, (B, 1, H, W)."""
    pad = smoothing // 2
    area = smoothing * smoothing

    def window_sum(t):
        return area * torch.nn.functional.avg_pool2d(
            t.sum(1, keepdim=True), smoothing, stride=1, padding=pad, count_include_pad=True
        )

    total, count = window_sum(r), window_sum(keep)
    ok = count > 0.5
    return torch.where(ok, total / count.clamp(min=1.0).sqrt(), 0.0), ok


#: Angle between the straight lines of the ``"line"`` score, degrees.
LINE_STEP = 3.0

#: Standard error of the median of n white-noise values of unit variance, times sqrt(n).
_MEDIAN_ERROR = float(np.sqrt(np.pi / 2))


def _line_indices(h, w, step):
    """Flat pixel indices of straight lines across an ``h`` x ``w`` image: (angles,
    along, offset), ``h * w`` where a line leaves the image; the lines of one angle are
    parallel and one pixel apart, each point on its nearest pixel."""
    angles = np.deg2rad(np.arange(0.0, 180.0, step))
    cy, cx = (h - 1) / 2, (w - 1) / 2
    half = np.ceil(np.hypot(h, w) / 2)
    # Steps from the centre that land on pixel centres along the rows and the columns.
    along = np.arange(-half, half + 1) - (cx - np.floor(cx))
    across = np.arange(-half, half + 1) - (cy - np.floor(cy))
    t, o = np.meshgrid(along, across, indexing="ij")
    cos, sin = np.cos(angles)[:, None, None], np.sin(angles)[:, None, None]
    col = np.floor(cx + t * cos - o * sin + 0.5).astype(int)  # t: along the line
    row = np.floor(cy + t * sin + o * cos + 0.5).astype(int)  # o: the line's offset
    inside = (col >= 0) & (col < w) & (row >= 0) & (row < h)
    return torch.as_tensor(np.where(inside, row * w + col, h * w))


def _bin2(resid, keep):
    """Sum of the unmasked noise-unit residuals in 2 x 2 blocks over the square root of
    their number (unit variance again), and whether each block holds one."""
    pad = (0, resid.shape[-1] % 2, 0, resid.shape[-2] % 2)
    r = torch.nn.functional.pad(resid * keep, pad)
    k = torch.nn.functional.pad(keep, pad)
    total = 4 * torch.nn.functional.avg_pool2d(r, 2)
    count = 4 * torch.nn.functional.avg_pool2d(k, 2)
    return total / count.clamp(min=1).sqrt(), count > 0.5


def _line_score(resid, keep, step=LINE_STEP):
    """Trail statistic of noise-unit residuals ``resid`` (B, C, H, W) with ``keep`` (1
    for unmasked pixels): the residuals are binned 2 x 2 (unit variance kept), and over
    straight lines across the binned image (every ``step`` degrees, every offset) and the
    bands, the largest median along a line of its unmasked values divided by the median's
    standard error for white noise (sqrt(pi / 2 n) for n values). Lines of fewer than
    half the binned image's side (the corners) are left out. Returns (B,), NaN where no
    line qualifies."""
    r, ok = _bin2(resid, keep)
    b, nb, h, w = r.shape
    idx = _line_indices(h, w, step).to(r.device)
    flat = torch.where(ok, r, torch.nan).flatten(2)
    flat = torch.cat([flat, flat.new_full((b, nb, 1), torch.nan)], 2)
    best = r.new_full((b,), -torch.inf)
    for lines in idx.transpose(1, 2):  # one angle at a time: (offset, along)
        values = flat[:, :, lines]  # (B, C, offset, along)
        n = (~values.isnan()).sum(3)
        z = values.nanmedian(3).values * n.sqrt() / _MEDIAN_ERROR
        z = torch.where(n >= min(h, w) / 2, z, -torch.inf)
        best = torch.maximum(best, z.flatten(1).max(1).values)
    return torch.where(torch.isfinite(best), best, torch.nan)


def _pixel_noise(model, dataset, x):
    """Each pixel's noise for residuals of ``model`` on cutouts ``x`` of ``dataset``: the
    one its likelihood uses (:meth:`astrounsup.models.ReconstructionModel.pixel_noise`),
    else the dataset's normaliser's (:meth:`astrounsup.io.AsinhNormalizer.pixel_noise`)."""
    own = getattr(model, "pixel_noise", None)
    sigma = own(x) if own is not None else None
    return dataset.normalizer.pixel_noise(x) if sigma is None else sigma


@torch.no_grad()
def _reconstruction_errors(
    model, dataset, reductions, batch_size, device, smoothing, progress=False, units="normalized"
):
    """Every requested reduction of the residuals from one pass over ``dataset``
    (``smoothing``: the window side of ``"extended"``, checked by the caller). With
    ``units="noise"`` the residuals are divided by each pixel's sky noise (the dataset's
    normaliser: :meth:`astrounsup.io.AsinhNormalizer.pixel_noise`), so the reductions are
    chi-squares; ``"band"`` gives the mean per band, ``(n, bands)``, and ``"line"`` the
    trail statistic of :func:`_line_score` (noise units only)."""
    device = model_device(model, device)
    model = model.to(device).eval()
    out = {r: [] for r in reductions}
    bar = progress_bar(total=len(dataset), desc="reconstructing", unit="cutout", enabled=progress)
    with bar:
        for images, masks, _ in dataset.loader(batch_size):
            bar.update(len(images))
            x = images.to(device)
            recon = model.reconstruct(x)
            keep = (~masks.to(device)).to(torch.float32)
            resid = (x.float() - recon.float()) * keep
            if units == "noise":
                resid = resid / _pixel_noise(model, dataset, x.float())
            sq = (resid**2).flatten(1)
            n = keep.flatten(1).sum(1)
            for r in reductions:
                if r == "line":
                    err = _line_score(resid, keep)
                elif r == "mean":
                    err = sq.sum(1) / n.clamp(min=1)
                elif r == "max":
                    err = sq.max(1).values
                elif r == "band":
                    per = keep.flatten(2).sum(2)
                    err = (resid**2).flatten(2).sum(2) / per.clamp(min=1)
                    err = torch.where(per > 0, err, torch.nan)
                elif units == "noise":
                    chi, ok = _window_chi(resid, keep, smoothing)
                    err = (chi**2).flatten(1).sum(1) / ok.flatten(1).sum(1).clamp(min=1)
                else:
                    smooth, ok = _window_mean(resid, keep, smoothing)
                    err = (smooth**2).flatten(1).sum(1) / ok.flatten(1).sum(1).clamp(min=1)
                if r != "band":
                    err = torch.where(n > 0, err, torch.nan)
                out[r].append(err.double().cpu().numpy())
    return {r: np.concatenate(v) if v else np.empty(0) for r, v in out.items()}


@torch.no_grad()
def negative_elbo(model, dataset, *, batch_size=256, device=None, seed=0):
    """The VAE's negative evidence lower bound per object (nats; higher = less likely).

    Parameters
    ----------
    model : astrounsup.models.VAE
    dataset : astrounsup.io.CutoutDataset
    batch_size : int, optional
    device : str or torch.device, optional
    seed : int, optional
        Seeds the one posterior draw per object, so repeated calls agree.

    Returns
    -------
    numpy.ndarray of shape (n,), float64
        ``nll + kl`` per pixel, as :meth:`astrounsup.models.VAE.elbo` defines them.
    """

    if not isinstance(model, VAE):
        msg = f"negative_elbo needs a VAE; got a {type(model).__name__}"
        raise TypeError(msg)
    device = model_device(model, device)
    model = model.to(device).eval()
    gen = torch.Generator(device=device).manual_seed(seed)
    out = []
    for images, masks, _ in dataset.loader(batch_size):
        terms = model.elbo(images.to(device), mask=masks.to(device), generator=gen)
        out.append(-terms["elbo"].double().cpu().numpy())
    return np.concatenate(out) if out else np.empty(0)


@torch.no_grad()
def inpainting_scores(model, dataset, *, tile=None, batch_size=256, device=None):
    """Chi-squares of what a context encoder predicts for hidden tiles of each cutout.

    The cutout is cut into square tiles and every tile is hidden once (in two passes, the
    tiles of a checkerboard's two colours), predicted from the visible rest, and compared
    with what was there, in units of each pixel's sky noise. An artefact cannot be
    predicted from its surroundings, so its tile's residual stands out; an ordinary object
    can.

    Parameters
    ----------
    model : astrounsup.models.ContextEncoder
    dataset : astrounsup.io.CutoutDataset
        Normalised by the :class:`astrounsup.io.AsinhNormalizer` of the model's training.
    tile : int, optional
        Tile side, px (default a quarter of the cutout side).
    batch_size : int, optional
    device : str or torch.device, optional

    Returns
    -------
    dict of str to numpy.ndarray of shape (n,)
        ``"inpaint_chi2"`` (mean over unmasked pixels), ``"inpaint_chi2_max"`` (largest
        pixel) and ``"inpaint_chi2_tile"`` (largest mean over one tile); NaN for a cutout
        with every pixel masked.
    """

    owner = "inpainting_scores"
    if not isinstance(model, ContextEncoder):
        msg = f"{owner} needs a ContextEncoder (the inpaint recipe); got a {type(model).__name__}"
        raise TypeError(msg)
    if not isinstance(dataset.normalizer, AsinhNormalizer):
        msg = f"{owner}: the dataset must be normalised by an AsinhNormalizer"
        raise ValueError(msg)
    _, _, ny, nx = dataset.shape
    tile = max(1, min(ny, nx) // 4) if tile is None else tile
    check_int(owner, "tile", tile, 1)
    device = model_device(model, device)
    model = model.to(device).eval()
    rows = torch.arange(ny, device=device)[:, None] // tile
    cols = torch.arange(nx, device=device)[None, :] // tile
    colour = (rows + cols) % 2
    tile_id = rows * ((nx + tile - 1) // tile) + cols
    n_tiles = int(tile_id.max()) + 1
    out = {"inpaint_chi2": [], "inpaint_chi2_max": [], "inpaint_chi2_tile": []}
    for images, masks, _ in dataset.loader(batch_size):
        x = images.to(device).float()
        keep = (~masks.to(device)).float()
        chi2 = torch.zeros_like(x)
        for c in (0, 1):
            holes = (colour == c)[None, None].expand(len(x), 1, ny, nx)
            pred = model.inpaint(x, holes).float()
            r2 = ((pred - x) / _pixel_noise(model, dataset, x)) ** 2
            chi2 = torch.where(holes.expand_as(x), r2, chi2)
        chi2 = chi2 * keep
        n = keep.flatten(1).sum(1)
        per_tile = torch.zeros(len(x), n_tiles, device=device)
        cnt = torch.zeros(len(x), n_tiles, device=device)
        idx = tile_id.flatten().expand(len(x), -1)
        per_tile.scatter_add_(1, idx, chi2.sum(1).flatten(1))
        cnt.scatter_add_(1, idx, keep.sum(1).flatten(1))
        tile_mean = torch.where(cnt > 0, per_tile / cnt.clamp(min=1), 0.0)
        for key, val in (
            ("inpaint_chi2", chi2.flatten(1).sum(1) / n.clamp(min=1)),
            ("inpaint_chi2_max", chi2.flatten(1).max(1).values),
            ("inpaint_chi2_tile", tile_mean.max(1).values),
        ):
            out[key].append(torch.where(n > 0, val, torch.nan).double().cpu().numpy())
    return {k: np.concatenate(v) if v else np.empty(0) for k, v in out.items()}


def model_scores(model, data, *, batch_size=256, device=None, smoothing=5, progress=True):
    """Model-based anomaly scores of every cutout of ``data``.

    Parameters
    ----------
    model : astrounsup.training.TrainedModel, str or pathlib.Path
        A trained autoencoder or VAE, or its checkpoint (contrastive models cannot
        reconstruct).
    data : path, numpy.ndarray or astrounsup.io.CutoutDataset
        The cutouts (normalised here as the model's training data).
    batch_size : int, optional
    device : str or torch.device, optional
    smoothing : int, optional
        Window side of ``"recon_extended"``, px (see :func:`reconstruction_error`).
    progress : bool, optional
        Show a progress bar.

    Returns
    -------
    dict of str to numpy.ndarray of shape (n,)
        Chi-squares of the residuals in units of each pixel's sky noise (the normaliser's:
        :meth:`astrounsup.io.AsinhNormalizer.pixel_noise`), so that they mean the same for a
        deep and a shallow cutout: ``"chi2"`` (mean per pixel), ``"chi2_max"`` (its largest
        pixel), ``"chi2_extended"`` (of the residual summed over the bands and
        ``smoothing``-wide windows, scaled to unit variance: faint extended light),
        ``"line"`` (the largest median residual along any straight line across the
        cutout, in any band, in units of its standard error: a satellite or bleed trail
        raises it along its whole length, a badly fitted core raises under half of any
        line's pixels; lines every :data:`LINE_STEP` degrees and one pixel apart),
        ``"chi2_<band>"`` (mean per pixel in each band) and, for a VAE, ``"elbo"``
        (:func:`negative_elbo`); for a context encoder, :func:`inpainting_scores`.

    Raises
    ------
    ValueError
        For a model without a decoder, naming it and the checkpoint.
    """

    trained = model if isinstance(model, TrainedModel) else TrainedModel.load(model)
    _check_reconstructs("model_scores", trained.model, trained.checkpoint)
    dataset = trained.dataset(data)
    _check_smoothing("model_scores", smoothing, dataset)
    errors = _reconstruction_errors(
        trained.model, dataset, (*RECONSTRUCTION_REDUCTIONS, "band", "line"), batch_size, device,
        smoothing, progress, units="noise",
    )  # fmt: skip
    out = {
        "chi2": errors["mean"],
        "chi2_max": errors["max"],
        "chi2_extended": errors["extended"],
        "line": errors["line"],
    }
    for j, band in enumerate(dataset.bands):
        out[f"chi2_{band}"] = errors["band"][:, j]
    if isinstance(trained.model, VAE):
        out["elbo"] = negative_elbo(trained.model, dataset, batch_size=batch_size, device=device)
    if isinstance(trained.model, ContextEncoder):
        out |= inpainting_scores(trained.model, dataset, batch_size=batch_size, device=device)
    return out
