"""The one colour rule for every picture of cutouts (report cards, galleries, montages).

A cutout is sky-subtracted band by band (the median of its border) and every band is
divided by one number, the cutout's sky noise (the median over the bands shown of each
band's border noise), so that the flux ratios between bands, and so the colours, are those of the
data (in a flux unit common to the bands, such as nanomaggies), while a deep and a
shallow cutout, or data in nanomaggies and in ADU, look alike. The bands become red, green
and blue by :func:`rgb_planes` and are stretched together with an asinh (Lupton et al.
2004): linear up to about ``stretch / Q`` noise sigmas, logarithmic beyond. Pixels without
data (NaN, inf or masked) are drawn in :data:`NO_DATA_RGB`, never as sky.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = [
    "NO_DATA_RGB",
    "THUMBNAIL_Q",
    "THUMBNAIL_STRETCH",
    "band_views",
    "composite_thumbnails",
    "rgb_planes",
    "scale_bar_arcsec",
]

#: Linear range of the asinh stretch, in sky-noise units.
THUMBNAIL_STRETCH = 10.0
#: Softening of the asinh stretch (Lupton et al. 2004); larger compresses bright cores more.
THUMBNAIL_Q = 8.0
#: The colour of pixels without data: a flat grey no sky takes.
NO_DATA_RGB = (112, 112, 112)

_PREFERRED = ("i", "r", "g")  # red, green, blue of the classic gri composite
_NICE_ARCSEC = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)


def rgb_planes(bands):
    """The planes shown as red, green and blue: ``i, r, g`` when present, otherwise the
    reddest, middle and bluest of three or more bands (named blue first); two bands give
    ``(reddest, None, bluest)`` (green their mean); one band ``None`` (grey).

    Examples
    --------
    >>> rgb_planes("ugriz"), rgb_planes("JHK"), rgb_planes("gr"), rgb_planes("r")
    ((3, 2, 1), (2, 1, 0), (1, None, 0), None)
    """
    bands = list(bands)
    if all(b in bands for b in _PREFERRED):
        return tuple(bands.index(b) for b in _PREFERRED)
    if len(bands) >= 3:
        return (len(bands) - 1, len(bands) // 2, 0)
    if len(bands) == 2:
        return (1, None, 0)
    return None


def scale_bar_arcsec(width_arcsec):
    """The round length (arcsec) nearest to a quarter of ``width_arcsec``, not above it."""
    target = width_arcsec / 4
    below = [v for v in _NICE_ARCSEC if v <= max(target, _NICE_ARCSEC[0])]
    return below[-1]


def _noise_units(images, bands):
    """Sky-subtracted cutouts divided by each cutout's one noise (the median over the bands
    the composite shows of each band's border noise); bands whose border has no spread take
    the band's median noise, then a robust spread of its pixels. Returns ``(z, no_data)``."""
    from astrounsup.noise import estimate_sky  # torch: only when a picture is drawn

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
    shown = [p for p in (rgb_planes(bands) or (0,)) if p is not None]
    one = np.median(noise[:, shown], axis=1)  # one per cutout: colours keep the flux ratios
    z = (x - sky[:, :, None, None]) / one[:, None, None, None]
    no_data = ~np.isfinite(z).all(axis=1)
    return np.nan_to_num(z, nan=0.0, posinf=0.0, neginf=0.0), no_data


def _check(x, bands, pixel_scale, stretch, Q, zoom, owner):
    if x.ndim != 4 or x.shape[1] != len(bands):
        msg = (
            f"{owner}: images must be (n, bands, ny, nx) with one band name each; got shape "
            f"{x.shape} and bands {list(bands)}"
        )
        raise ValueError(msg)
    checked = (("stretch", stretch), ("Q", Q))
    if _known(pixel_scale):
        checked = (("pixel_scale", pixel_scale), *checked)
    for name, value in checked:
        if isinstance(value, bool) or not np.isfinite(value) or value <= 0:
            msg = f"{owner}: {name} must be a positive number; got {value!r}"
            raise ValueError(msg)
    if isinstance(zoom, bool) or not isinstance(zoom, (int, np.integer)) or zoom < 1:
        msg = f"{owner}: zoom must be an integer >= 1; got {zoom!r}"
        raise ValueError(msg)


def _known(pixel_scale):
    """Whether a pixel scale is given: None or NaN (an array's) is unknown."""
    return pixel_scale is not None and not (
        isinstance(pixel_scale, numbers.Real) and np.isnan(pixel_scale)
    )


def _pictures(red, green, blue, no_data, *, stretch, Q, zoom):
    """``(n, ny * zoom, nx * zoom, 3)`` uint8 from planes in noise units, first row at the
    top (images are stored with their first row at the bottom, as FITS)."""
    from astropy.visualization import make_lupton_rgb

    n, ny, nx = red.shape
    out = np.empty((n, ny * zoom, nx * zoom, 3), np.uint8)
    for i in range(n):
        with np.errstate(divide="ignore", invalid="ignore"):  # 0 / 0 inside, discarded
            rgb = make_lupton_rgb(red[i], green[i], blue[i], minimum=0.0, stretch=stretch, Q=Q)
        rgb[no_data[i]] = NO_DATA_RGB
        out[i] = rgb[::-1].repeat(zoom, 0).repeat(zoom, 1)
    return out


def composite_thumbnails(images, *, bands, pixel_scale, stretch=THUMBNAIL_STRETCH, Q=THUMBNAIL_Q,
                         zoom=2, scale_bar=True):  # fmt: skip
    """Colour pictures of cutouts by the one colour rule (module notes).

    Parameters
    ----------
    images : numpy.ndarray of shape (n, bands, ny, nx)
        Fluxes in one unit for every band (any unit); NaN/inf pixels have no data.
    bands : sequence of str
        The band names, blue first (e.g. ``("g", "r", "i")``): :func:`rgb_planes`.
    pixel_scale : float or None
        Arcsec per pixel, for the scale bar; None or NaN (unknown): no bar.
    stretch, Q : float, optional
        The asinh stretch, in noise sigmas, and its softening.
    zoom : int, optional
        Each pixel drawn as ``zoom x zoom`` pixels, >= 1.
    scale_bar : bool, optional
        Draw a bar of :func:`scale_bar_arcsec` of the width, labelled, at the bottom left.

    Returns
    -------
    numpy.ndarray of shape (n, ny * zoom, nx * zoom, 3), uint8
        First row at the top of the picture.

    Raises
    ------
    ValueError
        Images that are not (n, bands, ny, nx) with one name per band, or a non-positive
        (or infinite) pixel scale, stretch, Q or zoom.

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
    x = np.asarray(images)
    _check(x, bands, pixel_scale, stretch, Q, zoom, "composite_thumbnails")
    z, no_data = _noise_units(x, bands)
    planes = rgb_planes(bands)
    if planes is None:
        red = green = blue = z[:, 0]
    else:
        red, blue = z[:, planes[0]], z[:, planes[2]]
        green = (red + blue) / 2 if planes[1] is None else z[:, planes[1]]
    out = _pictures(red, green, blue, no_data, stretch=stretch, Q=Q, zoom=zoom)
    if scale_bar and _known(pixel_scale):
        _draw_scale_bars(out, pixel_scale / zoom)
    return out


def band_views(images, *, bands, pixel_scale, stretch=THUMBNAIL_STRETCH, Q=THUMBNAIL_Q, zoom=2,
               scale_bar=True):  # fmt: skip
    """Each band of each cutout as a grey picture, in the units and stretch of
    :func:`composite_thumbnails` (so the bands compare by eye), labelled with its name.

    Parameters
    ----------
    images, bands, pixel_scale, stretch, Q, zoom, scale_bar
        As :func:`composite_thumbnails`.

    Returns
    -------
    numpy.ndarray of shape (n, bands, ny * zoom, nx * zoom, 3), uint8

    Examples
    --------
    >>> images = np.random.default_rng(0).normal(0.0, 1.0, (1, 2, 16, 16))
    >>> images[0, 1, 6:10, 6:10] += 40.0  # a source in the second band only
    >>> views = band_views(images, bands=("g", "r"), pixel_scale=0.2, scale_bar=False)
    >>> views.shape, bool(views[0, 1, 16, 16, 0] > views[0, 0, 16, 16, 0])
    ((1, 2, 32, 32, 3), True)
    """
    x = np.asarray(images)
    _check(x, bands, pixel_scale, stretch, Q, zoom, "band_views")
    z, no_data = _noise_units(x, bands)
    out = np.stack([_pictures(z[:, b], z[:, b], z[:, b], no_data, stretch=stretch, Q=Q,
                              zoom=zoom) for b in range(x.shape[1])], axis=1)  # fmt: skip
    n, nb = out.shape[:2]
    flat = out.reshape(n * nb, *out.shape[2:])
    _draw_labels(flat, [str(bands[b]) for _ in range(n) for b in range(nb)])
    if scale_bar and _known(pixel_scale):
        _draw_scale_bars(flat, pixel_scale / zoom)
    return flat.reshape(out.shape)


def _draw_labels(rgb, labels):
    """Each picture's label in white at its top left."""
    from PIL import Image, ImageDraw

    for i, label in enumerate(labels):
        image = Image.fromarray(rgb[i])
        ImageDraw.Draw(image).text((3, 2), label, fill=(255, 255, 255))
        rgb[i] = np.asarray(image)


def _draw_scale_bars(rgb, pixel_scale):
    """A white bar with its length in arcsec at the bottom left of every picture."""
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
