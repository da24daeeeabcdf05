"""SimCLR: an encoder trained so two augmented views of one object agree."""

from __future__ import annotations

import torch
from torch import nn

from astrounsup.losses import NTXentLoss, correlation_penalty
from astrounsup.models._base import EncoderModel
from astrounsup.models.encoders import DEFAULT_WIDTHS, MAX_LATENT_DIM, ConvEncoder, _bounded_int
from astrounsup.models.inputs import ColourResiduals

__all__ = ["SimCLR"]


class SimCLR(EncoderModel):
    """Encoder + projection head trained with NT-Xent (Chen et al. 2020).

    ``encode`` returns the representation before the head (what the latent analysis uses);
    ``forward`` returns the projection the loss sees.

    Parameters
    ----------
    bands, size, latent_dim, widths, kind
        As :class:`astrounsup.models.ConvAutoencoder`.
    projection_dim : int, optional
        Output width of the projection head (what NT-Xent compares).
    temperature : float, optional
        NT-Xent temperature. On simulated lens surveys (batch 128, 600 steps, views with
        seeing 1-1.4 and depth 1-1.6 times worse) 0.2 gave latents whose k-means clusters
        separate lenses better than 0.5 or 0.1 (accuracy 0.84 against 0.79 and 0.81, mean
        of five clusterings), though a linear probe on them was no better.
    decorrelation_weight : float, optional
        >= 0. Adds this times the mean :func:`astrounsup.losses.correlation_penalty` of the
        two views' representations (before the head, per rank's batch) to the loss; 0
        leaves it out. It spreads the latents over more directions. On simulated lens
        surveys (``eval/simclr_settings.py`` on a GPU, training seeds 0-3, mean of four
        k-means runs each) a weight of 20 raised the k-means (k = 20) accuracy on the raw
        latents from 0.879 to 0.901 on average, but clustering the first 12 standardised
        principal components of the latents trained without it did better (0.911), and
        the weight lowered that to 0.886; so the recipe leaves it at 0. Worth setting when
        the raw latents themselves are clustered.
    gather_distributed : bool, optional
        Negatives from every rank in multi-process training.
    views : {"strong", "survey"}, optional
        The augmentations of the two views the recipe trains with
        (:func:`astrounsup.training.contrastive_view_settings`): strong survey nuisances
        (seeing up to 3 times worse, noise up to 4 times, reddening), or calibrated on the
        survey's own seeing and depth (its PSF FWHM per cutout needed), without reddening.
    colour_residuals : bool, optional
        Give the encoder, beside the bands, the colour residuals ``b - a_b * red`` with the
        central object's light removed (:class:`astrounsup.models.ColourResiduals`),
        computed from each view as it is augmented and from each cutout embedded.
        The normaliser's stretch and the pixel scale are set by the recipe
        (:func:`astrounsup.training.build_model`).
    red_band : int, optional
        Index of the band whose light the residuals subtract (default: the last; the
        recipe sets the reddest of known band names).
    embed_dihedral : bool, optional
        Embed (in evaluation mode) as the mean of the representations of the 8 quarter
        turns and mirrors of each cutout: latents invariant to them by construction.
        Training is unchanged (its views are rotated and mirrored at random).
    loss : {"ntxent", "dcl"}, optional
        NT-Xent, or the decoupled contrastive loss (the positive left out of the softmax
        denominator; :class:`astrounsup.losses.NTXentLoss` with ``decoupled=True``), meant
        for small batches.
    """

    def __init__(
        self,
        bands,
        *,
        size,
        latent_dim=64,
        widths=DEFAULT_WIDTHS,
        kind="plain",
        projection_dim=64,
        temperature=0.2,
        decorrelation_weight=0.0,
        gather_distributed=True,
        views="strong",
        colour_residuals=False,
        red_band=None,
        embed_dihedral=False,
        loss="ntxent",
    ):
        super().__init__()
        self._remember(locals())
        if views not in ("strong", "survey"):
            msg = f"views must be 'strong' or 'survey'; got {views!r}"
            raise ValueError(msg)
        self.views = views
        if loss not in ("ntxent", "dcl"):
            msg = f"loss must be 'ntxent' or 'dcl'; got {loss!r}"
            raise ValueError(msg)
        if not _bounded_int(projection_dim, MAX_LATENT_DIM):
            msg = (
                f"projection_dim must be an integer in [1, {MAX_LATENT_DIM}]; got "
                f"{projection_dim!r}"
            )
            raise ValueError(msg)
        if not (
            isinstance(decorrelation_weight, (int, float))
            and not isinstance(decorrelation_weight, bool)
            and decorrelation_weight >= 0
        ):
            msg = f"decorrelation_weight must be a number >= 0; got {decorrelation_weight!r}"
            raise ValueError(msg)
        self.decorrelation_weight = float(decorrelation_weight)
        if not isinstance(embed_dihedral, bool):
            msg = f"embed_dihedral must be true or false; got {embed_dihedral!r}"
            raise ValueError(msg)
        self.embed_dihedral = embed_dihedral
        if not isinstance(colour_residuals, bool):
            msg = f"colour_residuals must be true or false; got {colour_residuals!r}"
            raise ValueError(msg)
        self.inputs = (
            ColourResiduals(bands, red=-1 if red_band is None else red_band)
            if colour_residuals
            else None
        )
        self.encoder = ConvEncoder(
            bands if self.inputs is None else self.inputs.out_bands,
            size=size,
            latent_dim=latent_dim,
            widths=widths,
            kind=kind,
        )
        self.head = nn.Sequential(
            nn.Linear(latent_dim, latent_dim), nn.SiLU(), nn.Linear(latent_dim, projection_dim)
        )
        self.criterion = NTXentLoss(
            temperature=temperature,
            gather_distributed=gather_distributed,
            decoupled=loss == "dcl",
        )

    def encode(self, x):
        """Latent vectors ``(B, latent_dim)`` of cutouts ``(B, bands, size, size)`` (with
        ``embed_dihedral``, in evaluation mode, the mean over their 8 quarter turns and
        mirrors)."""
        if self.embed_dihedral and not self.training:
            turns = [torch.rot90(x, k, dims=(-2, -1)) for k in range(4)]
            views = torch.cat([*turns, *(torch.flip(t, dims=(-1,)) for t in turns)])
            return self._encode(views).view(8, x.shape[0], -1).mean(dim=0)
        return self._encode(x)

    def _encode(self, x):
        return self.encoder(x if self.inputs is None else self.inputs(x))

    def forward(self, x):
        return self.head(self.encode(x))

    def loss(self, view_a, view_b):
        """NT-Xent (or DCL) of two views ``(B, bands, size, size)`` of the same B objects, plus the
        weighted correlation penalty of their representations when
        ``decorrelation_weight`` > 0 (both terms are returned too)."""
        h_a, h_b = self.encode(view_a), self.encode(view_b)
        ntxent = self.criterion(self.head(h_a), self.head(h_b))
        if self.decorrelation_weight == 0:
            return {"loss": ntxent}
        penalty = 0.5 * (correlation_penalty(h_a) + correlation_penalty(h_b))
        return {
            "loss": ntxent + self.decorrelation_weight * penalty,
            "ntxent": ntxent.detach(),
            "correlation": penalty.detach(),
        }
