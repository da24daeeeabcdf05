"""Views for contrastive learning, and readable default pipelines."""

from __future__ import annotations

from astrounsup.transforms.base import Compose
from astrounsup.transforms.geometric import RandomRotation, max_rotation_size
from astrounsup.transforms.photometric import (
    Brightness,
    MaskPatches,
    PSFDegrade,
    Redden,
    SkyNoise,
    SurveyDepth,
)

__all__ = [
    "MultiView",
    "contrastive_pipeline",
    "contrastive_view_size",
    "contrastive_views",
    "denoising_pipeline",
]


class MultiView:
    """Several independently augmented views of one batch: a list of per-view pipelines.

    Examples
    --------
    >>> import torch
    >>> from astrounsup.transforms import RandomRot90Flip
    >>> views = MultiView([RandomRot90Flip(), RandomRot90Flip()])
    >>> out = views(torch.randn(4, 3, 16, 16), generator=torch.Generator().manual_seed(1))
    >>> len(out), tuple(out[0][0].shape)
    (2, (4, 3, 16, 16))
    """

    def __init__(self, pipelines):
        self.pipelines = list(pipelines)
        if len(self.pipelines) < 2:
            msg = f"MultiView needs at least two pipelines; got {len(self.pipelines)}"
            raise ValueError(msg)

    def __call__(self, images, masks=None, *, generator=None, meta=None):
        return [p(images, masks, generator=generator, meta=meta) for p in self.pipelines]

    def __repr__(self):
        return f"MultiView({self.pipelines!r})"


#: Smallest side the default contrastive views shrink their jitter to keep (the default
#: encoder's three downsampling stages need 16 px).
MIN_VIEW = 16


def contrastive_jitter(size):
    """Largest shift of the default contrastive views' crop for ``size``-px cutouts: 4 px,
    less for small stamps so that the views keep :data:`MIN_VIEW` px when they can (e.g.
    3 px for 32-px stamps, 0 for 24 px)."""
    return max(0, min(4, (max_rotation_size(size) - MIN_VIEW) // 2))


def contrastive_view_size(size, jitter=None):
    """Side of the default contrastive views of ``size``-px cutouts: the largest crop any
    rotation fills, less the jitter (default :func:`contrastive_jitter`), and of the
    cutout's parity so a centred crop of the cutout (what the trained encoder is applied
    to) matches it."""

    jitter = contrastive_jitter(size) if jitter is None else jitter
    side = max_rotation_size(size) - 2 * jitter
    return side - ((size - side) % 2)


def contrastive_pipeline(
    *,
    size,
    pixel_scale,
    bands,
    jitter=None,
    fwhm_in=None,
    seeing_factor=(1.0, 3.0),
    depth=(1.0, 4.0),
    ebv=(0.0, 0.1),
    brightness=(-1.0, 1.0),
    asinh_scale=None,
):
    """The default augmentations of one contrastive view.

    A brighter or fainter object, arbitrary rotation with a random mirror and a jitter crop
    (one bilinear resampling, cropped so no corner is empty), worse seeing (Gaussian
    kernel), shallower depth and dust reddening: the nuisances of a survey, none of which
    changes what the object is.

    Parameters
    ----------
    size : int
        Side of the input cutouts; the output side is :func:`contrastive_view_size`.
    pixel_scale : float
        Arcsec per pixel.
    bands : sequence of str
        Band names (for the reddening coefficients).
    jitter : int, optional
        Largest shift of the crop, pixels (default :func:`contrastive_jitter`).
    fwhm_in : float, optional
        Seeing (arcsec) when the batch metadata has no ``psf_fwhm``.
    seeing_factor, depth, ebv : (float, float), optional
        Ranges of ``FWHM_out / FWHM_in``, of ``sigma_out / sigma_in`` and of E(B-V);
        ``ebv=None`` leaves reddening out (needed for bands without known coefficients);
        ``depth="survey"`` takes each cutout to the depth of another cutout of the batch
        (:class:`astrounsup.transforms.SurveyDepth`) instead.
        The defaults are strong (seeing up to 3x worse, noise up to 4x, i.e. 1.5 mag
        shallower): on simulated lens surveys they gave SimCLR latents that separate lenses
        better than mild ranges (linear probe 0.93 against 0.87 with 1.0-1.4 and 1.0-1.6;
        k-means 0.86 against 0.83); weaker (1.15, 1.2) and stronger (4, 8) ranges were worse.
    brightness : (float, float) or None, optional
        Range of the magnitude change of :class:`astrounsup.transforms.Brightness` (the
        whole object, noise included, brighter or fainter); ``None`` leaves it out. With
        it the SimCLR latents lean less on how bright an object is: k-means accuracy on
        the simulated lens survey 0.870 (``eval/lens_clustering.py``, mean of five
        clusterings) against 0.857 without (``eval/simclr_settings.py --brightness none``,
        mean of four), Bayesian GMM 0.924 against 0.886.
    asinh_scale : sequence of float, optional
        The per-band ``scale_`` of the :class:`astrounsup.io.AsinhNormalizer` that
        stretched the cutouts, so the brightness change scales fluxes, not stretched
        values; ``None``: the cutouts are linear fluxes.

    Returns
    -------
    Compose

    Notes
    -----
    Each transform does what its name says to the values it is given. The SimCLR recipe
    (``astrounsup train --model simclr``) gives them the cutouts as the dataset yields them,
    asinh-stretched by :class:`astrounsup.io.AsinhNormalizer`. The added noise is then right
    for the faint pixels (the stretch is linear within about two noise sigmas, and the noise
    is measured on the stretched border) and too strong on bright ones, and the blur and the
    reddening act on stretched values, not on fluxes: a bright core is blurred less than
    worse seeing would blur it. This is kept because it measured better: the same views
    applied to the linear fluxes (undo the stretch, augment, stretch again) gave latents
    whose k-means clusters separate simulated lenses worse (accuracy 0.83 against 0.86;
    milder ranges in linear flux, seeing 1-1.8 and depth 1-3, 0.73).
    ``eval/simclr_settings.py --space linear`` repeats the comparison.
    """
    bright = [] if brightness is None else [Brightness(brightness, asinh_scale=asinh_scale)]
    jitter = contrastive_jitter(size) if jitter is None else jitter
    return Compose(
        [
            *bright,
            # Rotation, mirror and jitter crop, fused into one resampling.
            RandomRotation(
                (0.0, 360.0),
                size=contrastive_view_size(size, jitter),
                mirror=True,
                max_shift=jitter,
            ),
            PSFDegrade(seeing_factor, pixel_scale=pixel_scale, fwhm_in=fwhm_in),
            SurveyDepth() if isinstance(depth, str) and depth == "survey" else SkyNoise(depth),
            *([] if ebv is None else [Redden(ebv, bands=bands)]),
        ]
    )


def contrastive_views(n_views=2, **kwargs):
    """``n_views`` independent :func:`contrastive_pipeline` views (SimCLR uses two)."""
    return MultiView([contrastive_pipeline(**kwargs) for _ in range(n_views)])


def denoising_pipeline(*, depth=(1.5, 3.0), patches=(0, 2), patch_size=(4, 10)):
    """The default corruption for denoising and inpainting autoencoders: extra sky noise
    (``depth`` times the cutout's own) and hidden patches; the clean cutout is the target.

    Returns
    -------
    Compose
    """
    return Compose([SkyNoise(depth), MaskPatches(patches, patch_size)])
