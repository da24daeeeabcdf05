"""Colour thumbnails of cutouts, stretched from each cutout's measured noise."""

from __future__ import annotations

import numpy as np

from astrounsup.noise import estimate_sky

__all__ = ["THUMBNAIL_Q", "THUMBNAIL_STRETCH", "composite_thumbnails", "scale_bar_arcsec"]

#: Linear range of the asinh stretch of :func:`composite_thumbnails`, in sky-noise units.
THUMBNAIL_STRETCH = 10.0
#: Softening of the asinh stretch (Lupton et al. 2004); larger compresses bright cores more.
THUMBNAIL_Q = 8.0

_NICE_ARCSEC = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)


def scale_bar_arcsec(width_arcsec):
    """The round length (arcsec) nearest to a quarter of ``width_arcsec``, not above it."""
    target = width_arcsec / 4
    below = [v for v in _NICE_ARCSEC if v <= max(target, _NICE_ARCSEC[0])]
    return below[-1]


def _noise_units(images):
    """Sky-subtracted cutouts in units of each cutout's border noise, per band; bands whose
    border has no spread take the band's median noise, then a robust spread of the pixels."""

    x = np.asarray(images, dtype=np.float32)
    sky, noise = estimate_sky(x)
    sky = np.nan_to_num(np.asarray(sky, dtype=np.float64))
    noise = np.asarray(noise, dtype=np.float64)
    ok = np.isfinite(noise) & (noise > 0)
    for b in range(x.shape[1]):
        if ok[:, b].any():
            fill = np.median(noise[ok[:, b], b])
        else:
            pixels = x[:, b][np.isfinite(x[:, b])]
            mad = 1.4826 * np.median(np.abs(pixels - np.median(pixels))) if pixels.size else 0.0
            fill = mad if mad > 0 else (np.std(pixels) if pixels.size and np.std(pixels) else 1.0)
        noise[~ok[:, b], b] = fill
    z = (x - sky[:, :, None, None]) / noise[:, :, None, None]
    return np.nan_to_num(z, nan=0.0, posinf=0.0, neginf=0.0), noise


def composite_thumbnails(images, *, bands, pixel_scale, stretch=THUMBNAIL_STRETCH, Q=THUMBNAIL_Q,
                         zoom=2, scale_bar=True):  # fmt: skip
    """RGB thumbnails of cutouts: an asinh composite in units of each cutout's noise.

    Each band is sky-subtracted and divided by the cutout's own border noise
    (:func:`astrounsup.noise.estimate_sky`), so a deep and a shallow cutout, or data in
    nanomaggies and in ADU, look alike; the three reddest bands (in the order given, blue
    first) become blue, green and red and are stretched together (Lupton et al. 2004,
    :func:`astropy.visualization.make_lupton_rgb`: linear up to about ``stretch / Q``
    noise sigmas, logarithmic beyond). One band gives a grey image; two give red and blue
    with their mean as green. Masked (NaN) pixels are black.

    Parameters
    ----------
    images : numpy.ndarray of shape (n, bands, ny, nx)
        Fluxes, any unit.
    bands : sequence of str
        The band names, blue first (e.g. ``("g", "r", "i")``).
    pixel_scale : float
        Arcsec per pixel, for the scale bar.
    stretch, Q : float, optional
        The asinh stretch, in noise sigmas, and its softening.
    zoom : int, optional
        Each pixel drawn as ``zoom x zoom`` pixels, >= 1.
    scale_bar : bool, optional
        Draw a bar of :func:`scale_bar_arcsec` of the width, labelled, at the bottom left.

    Returns
    -------
    numpy.ndarray of shape (n, ny * zoom, nx * zoom, 3), uint8

    Raises
    ------
    ValueError
        Images that are not (n, bands, ny, nx) with one name per band, or a non-positive
        pixel scale, stretch, Q or zoom.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> images = rng.normal(0.0, 1.0, (2, 3, 32, 32))
    >>> images[:, :, 14:18, 14:18] += 50.0  # a bright source
    >>> rgb = composite_thumbnails(images, bands=("g", "r", "i"), pixel_scale=0.2)
    >>> rgb.shape, rgb.dtype.name
    ((2, 64, 64, 3), 'uint8')
    >>> bool(rgb[0, 32, 32].min() > rgb[0, 5, 60].max())  # the source is brighter than sky
    True
    """
    from astropy.visualization import make_lupton_rgb

    x = np.asarray(images)
    if x.ndim != 4 or x.shape[1] != len(bands):
        msg = (
            f"composite_thumbnails: images must be (n, bands, ny, nx) with one band name "
            f"each; got shape {x.shape} and bands {list(bands)}"
        )
        raise ValueError(msg)
    for name, value in (("pixel_scale", pixel_scale), ("stretch", stretch), ("Q", Q)):
        if isinstance(value, bool) or not np.isfinite(value) or value <= 0:
            msg = f"composite_thumbnails: {name} must be a positive number; got {value!r}"
            raise ValueError(msg)
    if isinstance(zoom, bool) or not isinstance(zoom, (int, np.integer)) or zoom < 1:
        msg = f"composite_thumbnails: zoom must be an integer >= 1; got {zoom!r}"
        raise ValueError(msg)
    z, _ = _noise_units(x)
    nb = x.shape[1]
    if nb == 1:
        red = green = blue = z[:, 0]
    elif nb == 2:
        red, blue = z[:, 1], z[:, 0]
        green = (red + blue) / 2
    else:
        blue, green, red = z[:, -3], z[:, -2], z[:, -1]
    out = np.empty((len(x), x.shape[2] * zoom, x.shape[3] * zoom, 3), np.uint8)
    for i in range(len(x)):
        # Images are stored with the first row at the bottom (FITS); a picture's first row
        # is its top.
        with np.errstate(divide="ignore", invalid="ignore"):  # black pixels: 0 / 0 inside
            rgb = make_lupton_rgb(red[i], green[i], blue[i], minimum=0.0, stretch=stretch, Q=Q)
        rgb = rgb[::-1].repeat(zoom, 0).repeat(zoom, 1)
        out[i] = rgb
    if scale_bar:
        _draw_scale_bars(out, pixel_scale / zoom)
    return out


def _draw_scale_bars(rgb, pixel_scale):
    """A white bar with its length in arcsec at the bottom left of every thumbnail."""
    from PIL import Image, ImageDraw

    n, h, w, _ = rgb.shape
    length = scale_bar_arcsec(w * pixel_scale)
    px = round(length / pixel_scale)
    label = f'{length:g}"'
    for i in range(n):
        image = Image.fromarray(rgb[i])
        draw = ImageDraw.Draw(image)
        y = h - max(4, h // 16)
        draw.line([(3, y), (3 + px, y)], fill=(255, 255, 255), width=max(1, h // 64))
        draw.text((3, y - 12), label, fill=(255, 255, 255))
        rgb[i] = np.asarray(image)
