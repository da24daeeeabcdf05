"""FITS cutouts: reading them in the layouts astronomers keep them in, and writing one
file per object holding a ``(bands, ny, nx)`` cube with a TAN WCS."""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import lzma
import re
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, WCSSUB_CELESTIAL, FITSFixedWarning
from astropy.wcs.utils import proj_plane_pixel_scales

from astrounsup._atomic import atomic_directory, atomic_path

__all__ = [
    "BAND_FILE_PATTERN",
    "Cutout",
    "CutoutReadError",
    "cutout_header",
    "group_band_files",
    "read_cutout",
    "read_cutout_group",
    "write_fits_cutout",
    "write_fits_cutouts",
]

# --- reading ----------------------------------------------------------------------------


class CutoutReadError(ValueError):
    """A cutout that cannot be read; the message names the file (and the object)."""


@dataclass(frozen=True)
class Cutout:
    """One object's multi-band cutout as read from disk.

    Attributes
    ----------
    image : numpy.ndarray of shape (bands, ny, nx), float32
        Pixel values in native byte order, BSCALE/BZERO applied; NaN where the file has NaN.
    bands : tuple of str
        Band of each plane.
    ra, dec : float
        Centre of the cutout, degrees (NaN if the file has no celestial WCS).
    pixel_scale : float
        Arcsec per pixel (NaN if unknown).
    object_id : str or None
        From the ``OBJECT`` keyword, if any.
    paths : tuple of str
        The file(s) the cutout came from.
    flux_unit : str or None
        The pixel unit from the ``BUNIT`` keyword, if any.
    """

    image: np.ndarray
    bands: tuple[str, ...]
    ra: float = np.nan
    dec: float = np.nan
    pixel_scale: float = np.nan
    object_id: str | None = None
    paths: tuple[str, ...] = field(default_factory=tuple)
    flux_unit: str | None = None


_BAND_KEYS = ("FILTER", "BAND", "FILTNAM1", "FILTER1")


def _image_hdus(hdul):
    return [h for h in hdul if h.is_image and h.header.get("NAXIS", 0) > 0 and h.data is not None]


def _cube_bands(header, n):
    if "BANDS" in header:
        names = [b.strip() for b in str(header["BANDS"]).split(",")]
        if len(names) == n:
            return names
    names = [header.get(f"BAND{j}") for j in range(1, n + 1)]
    if all(names):
        return [str(b) for b in names]
    return [f"band{j}" for j in range(n)]


def _plane_band(hdu, primary, k):
    for key in _BAND_KEYS:
        for h in (hdu.header, primary):
            if h is not None and h.get(key):
                return str(h[key]).strip()
    if hdu.header.get("EXTNAME"):
        ver = hdu.header.get("EXTVER")
        return str(hdu.header["EXTNAME"]) + (f",{ver}" if ver is not None else "")
    return f"hdu{k}"


def _sky_geometry(header, shape):
    """(ra, dec, pixel_scale) of the cutout centre from its WCS, or NaNs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        try:
            # Only the celestial axes, parsed once (a cube's band axis is not needed).
            wcs = WCS(header, naxis=[WCSSUB_CELESTIAL])
        except Exception:  # a broken WCS is a missing WCS, not a broken cutout
            wcs = None
    ra = dec = np.nan
    scale = float(header.get("PIXSCALE", np.nan))
    if wcs is not None and wcs.has_celestial and wcs.naxis == 2:
        ny, nx = shape[-2:]
        if wcs.wcs.radesys.strip().upper() in ("ICRS", "") and wcs.wcs.lngtyp == "RA":
            # Already ICRS RA/Dec: plain numbers, no SkyCoord (a third of the read time).
            (lon,), (lat,) = wcs.all_pix2world([(nx - 1) / 2], [(ny - 1) / 2], 0)
            ra, dec = float(lon) % 360.0, float(lat)
        else:
            icrs = wcs.pixel_to_world((nx - 1) / 2, (ny - 1) / 2).icrs
            ra, dec = float(icrs.ra.deg), float(icrs.dec.deg)
        if not np.isfinite(scale):
            scale = float(np.mean(proj_plane_pixel_scales(wcs)) * 3600.0)
    return ra, dec, scale


_NAXIS_CARD = re.compile(rb"NAXIS(\d{0,3}) *=\s*([-+]?\d+)")


def _check_naxis(path, raw):
    """Refuse a header whose NAXIS is beyond the FITS standard's 0 to 999, or with a
    negative axis length: astropy would try to build that many axes (a crafted
    ``NAXIS = 99999999999`` takes all memory) or read a negative size for ever."""
    for m in _NAXIS_CARD.finditer(raw):
        if m.start() % 80 or m.end() - m.start() > 80:
            continue
        axis, value = m.group(1).decode(), int(m.group(2))
        if (not axis and not 0 <= value <= 999) or value < 0:
            allowed = "0 to 999" if not axis else "a length >= 0"
            msg = f"{path}: header declares NAXIS{axis} = {value}; FITS allows {allowed}"
            raise CutoutReadError(msg)


def _check_declared_sizes(path, hdul, size):
    """Refuse HDUs whose headers declare more data than the file holds (a damaged or
    crafted NAXISn would otherwise have gigabytes allocated and read); a last block short
    of its padding is left to astropy."""
    for k, h in enumerate(hdul):
        info = h.fileinfo() or {}
        start, span = info.get("datLoc"), info.get("datSpan")
        if start is not None and span is not None and start + span > size + 2880:
            msg = (
                f"{path}: HDU {k} declares {span} bytes of data but the file holds "
                f"{max(size - start, 0)} after its header"
            )
            raise CutoutReadError(msg)


@contextlib.contextmanager
def _open(path):
    """Open a FITS file with every HDU loaded, turning failures into CutoutReadError."""
    path = Path(path)
    if not path.exists():
        msg = f"{path}: no such file"
        raise CutoutReadError(msg)
    if path.stat().st_size == 0:
        msg = f"{path}: empty file"
        raise CutoutReadError(msg)
    raw = _file_bytes(path)
    _check_naxis(path, raw)
    with warnings.catch_warnings():
        warnings.simplefilter("error", category=Warning)
        warnings.filterwarnings("ignore", category=FITSFixedWarning)
        try:
            hdul = fits.open(io.BytesIO(raw), memmap=False, lazy_load_hdus=False)
        except Exception as err:
            msg = f"{path}: cannot read FITS ({type(err).__name__}: {err})"
            raise CutoutReadError(msg) from err
        try:
            _check_declared_sizes(path, hdul, len(raw))
            for h in hdul:  # load every HDU's data now, while truncation is an error
                _ = h.data
        except CutoutReadError:
            hdul.close()
            raise
        except Exception as err:
            hdul.close()
            msg = f"{path}: cannot read FITS ({type(err).__name__}: {err})"
            raise CutoutReadError(msg) from err
        try:
            yield hdul
        finally:
            hdul.close()


#: Largest FITS file a cutout may decompress to (a crafted .gz could fill the memory).
MAX_FITS_BYTES = 2**29
#: FITS block size, bytes.
_BLOCK = 2880
#: Most header blocks one HDU may have (36 cards each).
_MAX_HEADER_BLOCKS = 1000
_CARD_VALUE = re.compile(rb"^(NAXIS\d{0,3}|BITPIX|PCOUNT|GCOUNT) *= *([-+]?\d+)")


def _declared_data_bytes(header):
    """Bytes of data (padded to whole blocks) that a header's cards declare."""
    cards = {}
    for k in range(0, len(header), 80):
        m = _CARD_VALUE.match(header[k : k + 80])
        if m:
            cards.setdefault(m.group(1).decode(), int(m.group(2)))
    naxis = cards.get("NAXIS", 0)
    if naxis <= 0:
        return 0
    count = 1
    for i in range(1, naxis + 1):
        count *= max(cards.get(f"NAXIS{i}", 0), 0)
    size = abs(cards.get("BITPIX", 8)) // 8 * cards.get("GCOUNT", 1) * (
        cards.get("PCOUNT", 0) + count)  # fmt: skip
    return -(-size // _BLOCK) * _BLOCK


def _read_hdus(path, stream):
    """The HDUs of a FITS stream, header by header: each header's declared data size is
    checked against :data:`MAX_FITS_BYTES` before its data is read, so a crafted or
    compressed file never has more allocated than it declares and the limit allows;
    bytes after the last HDU (a block that is not an ``XTENSION``) are refused unread."""
    out = bytearray()
    while True:
        block = stream.read(_BLOCK)
        if not block:
            return bytes(out)
        if out and not block.startswith(b"XTENSION"):
            msg = f"{path}: bytes follow the last HDU at byte {len(out)}; not a FITS file's end"
            raise CutoutReadError(msg)
        header = bytearray(block)
        while not any(header[k : k + 80].startswith(b"END ") or header[k : k + 80] == b"END"
                      for k in range(len(header) - _BLOCK, len(header), 80)):  # fmt: skip
            if len(header) >= _MAX_HEADER_BLOCKS * _BLOCK:
                msg = f"{path}: a header of more than {_MAX_HEADER_BLOCKS} blocks; not a cutout"
                raise CutoutReadError(msg)
            block = stream.read(_BLOCK)
            if not block:
                break  # truncated: astropy names it
            header += block
        _check_naxis(path, bytes(header))
        size = _declared_data_bytes(bytes(header))
        if len(out) + len(header) + size > MAX_FITS_BYTES:
            msg = (
                f"{path}: declares {len(out) + len(header) + size} bytes (decompressed); a "
                f"cutout may hold at most {MAX_FITS_BYTES}"
            )
            raise CutoutReadError(msg)
        out += header
        while size > 0:  # in pieces: a short stream allocates only what it holds
            piece = stream.read(min(size, 2**24))
            if not piece:
                return bytes(out)  # truncated: astropy names it
            out += piece
            size -= len(piece)


def _file_bytes(path):
    """The bytes of a FITS file, gzip, bzip2, xz or one-member zip files decompressed (at
    most MAX_FITS_BYTES, each HDU's data size checked before it is read); anything that
    does not begin as FITS does is refused, so astropy never decompresses (unbounded) what
    was not checked here."""
    with open(path, "rb") as fh:
        head = fh.read(6)
        fh.seek(0)
        try:
            with _decompressing(path, fh, head) as stream:
                first = stream.read(len(b"SIMPLE  ="))
                if first != b"SIMPLE  =":
                    msg = (
                        f"{path}: cannot read FITS (it does not begin with the SIMPLE card of "
                        "a FITS file)"
                    )
                    raise CutoutReadError(msg)
                raw = _read_hdus(path, _Prefixed(first, stream))
        except CutoutReadError:
            raise
        except (OSError, EOFError, ValueError, zipfile.BadZipFile, lzma.LZMAError) as err:
            msg = f"{path}: cannot decompress ({type(err).__name__}: {err})"
            raise CutoutReadError(msg) from err
    return raw


class _Prefixed:
    """A stream with bytes already read from it put back in front."""

    def __init__(self, prefix, stream):
        self.prefix, self.stream = prefix, stream

    def read(self, n):
        if self.prefix:
            head, self.prefix = self.prefix[:n], self.prefix[n:]
            return head + (self.stream.read(n - len(head)) if n > len(head) else b"")
        return self.stream.read(n)


@contextlib.contextmanager
def _decompressing(path, fh, head):
    if head[:2] == b"\x1f\x8b":
        with gzip.GzipFile(fileobj=fh) as stream:
            yield stream
    elif head[:3] == b"BZh":
        with bz2.BZ2File(fh) as stream:
            yield stream
    elif head == b"\xfd7zXZ\x00":
        with lzma.LZMAFile(fh) as stream:
            yield stream
    elif head[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(fh) as archive:
            members = archive.infolist()
            if len(members) != 1:
                msg = f"{path}: a zip archive of {len(members)} files; a zipped FITS holds one"
                raise CutoutReadError(msg)
            with archive.open(members[0]) as stream:
                yield stream
    else:
        yield fh


def _band_indices(path, names, bands):
    """Where each requested band is among ``names``: exact match first, else the one name
    equal to it ignoring case (EXTNAMEs are often upper-case)."""
    lower = [n.lower() for n in names]
    out, missing = [], []
    for b in bands:
        if b in names:
            out.append(names.index(b))
        elif lower.count(b.lower()) == 1:
            out.append(lower.index(b.lower()))
        else:
            missing.append(b)
    if missing:
        msg = f"{path}: no band(s) {missing}; the file has {list(names)}"
        raise CutoutReadError(msg)
    return out


def _parse(path, hdul, hdu):
    """The pixels and header facts of an open FITS cutout (see :func:`read_cutout`)."""
    primary = hdul[0].header
    if hdu is not None:
        try:
            chosen = [hdul[hdu]]
        except (KeyError, IndexError) as err:
            msg = f"{path}: no HDU {hdu!r}"
            raise CutoutReadError(msg) from err
    else:
        chosen = _image_hdus(hdul)
    if not chosen or chosen[0].data is None:
        msg = f"{path}: no image data (found HDUs {[type(h).__name__ for h in hdul]})"
        raise CutoutReadError(msg)
    ndims = {h.data.ndim for h in chosen}
    if ndims == {3} and len(chosen) == 1:
        h = chosen[0]
        data = np.asarray(h.data, dtype=np.float32)
        names = _cube_bands(h.header, data.shape[0])
        header = h.header
    elif ndims == {2}:
        shapes = {h.data.shape for h in chosen}
        if len(shapes) != 1:
            msg = f"{path}: image HDUs differ in shape {sorted(shapes)}; cannot stack bands"
            raise CutoutReadError(msg)
        data = np.stack([np.asarray(h.data, dtype=np.float32) for h in chosen])
        names = [_plane_band(h, primary, k) for k, h in enumerate(chosen)]
        header = chosen[0].header
    else:
        dims = sorted(ndims)
        msg = (
            f"{path}: expected one 3-D cube (bands, y, x) or 2-D images; "
            f"got data of {dims} dimensions"
        )
        raise CutoutReadError(msg)
    if len(set(names)) != len(names):
        names = [f"{b}#{k}" for k, b in enumerate(names)]
    ra, dec, scale = _sky_geometry(header, data.shape)
    object_id = primary.get("OBJECT") or header.get("OBJECT")
    unit = header.get("BUNIT") or primary.get("BUNIT")
    return data, names, ra, dec, scale, object_id, unit


def read_cutout(path, *, bands=None, hdu=None):
    """Read one object's cutout from a FITS file.

    Accepted layouts: a cube ``(bands, ny, nx)`` in one HDU (band names from ``BANDS`` or
    ``BAND1..n``); multi-extension files with one 2-D band per image HDU (band from
    ``FILTER``/``BAND``, else ``EXTNAME``); a single 2-D image. Tile-compressed (``.fz``:
    RICE, GZIP, HCOMPRESS) and gzip-compressed (``.gz``) files, integer images with
    BSCALE/BZERO and big-endian data are read transparently, and converted once to native
    float32.

    Parameters
    ----------
    path : str or pathlib.Path
    bands : sequence of str, optional
        Bands to return, in this order (matched ignoring case when that is unambiguous);
        default all, in file order.
    hdu : int or str, optional
        Read only this HDU (index or EXTNAME), a cube or a single band.

    Returns
    -------
    Cutout

    Raises
    ------
    CutoutReadError
        The file is missing, empty, truncated or corrupt, holds no 2-D/3-D image, holds
        1-D data, lacks a requested band, has bands that disagree in shape, or has no finite
        pixel; the message names the file.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.io import fits
    >>> path = getfixture("tmp_path") / "cube.fits"
    >>> hdr = fits.Header({"BANDS": "g,r"})
    >>> fits.PrimaryHDU(np.zeros((2, 8, 8), ">i2"), header=hdr).writeto(path)
    >>> c = read_cutout(path, bands=["r"])
    >>> c.bands, c.image.shape, c.image.dtype
    (('r',), (1, 8, 8), dtype('float32'))
    """
    path = Path(path)
    with _open(path) as hdul:
        try:
            data, names, ra, dec, scale, object_id, unit = _parse(path, hdul, hdu)
        except CutoutReadError:
            raise
        except Exception as err:  # a card astropy cannot parse, a WCS it refuses, ...
            msg = f"{path}: unreadable header ({type(err).__name__}: {err})"
            raise CutoutReadError(msg) from err
    if not np.isfinite(data).any():
        msg = f"{path}: every pixel is NaN or infinite"
        raise CutoutReadError(msg)
    if bands is not None:
        data = data[_band_indices(path, names, bands)]
        names = list(bands)
    return Cutout(
        image=np.ascontiguousarray(data),
        bands=tuple(names),
        ra=ra,
        dec=dec,
        pixel_scale=scale,
        object_id=None if object_id is None else str(object_id),
        paths=(str(path),),
        flux_unit=None if unit is None else str(unit).strip() or None,
    )


def read_cutout_group(paths, *, bands):
    """Stack one single-band file per band into one object's cutout.

    Parameters
    ----------
    paths : sequence of path
        One file per band, in the order of ``bands``.
    bands : sequence of str
        The band of each file.

    Returns
    -------
    Cutout

    Raises
    ------
    CutoutReadError
        Any file unreadable, not single-band, or of another shape than the first.
    """
    if len(paths) != len(bands):
        msg = f"{len(paths)} files for {len(bands)} bands {list(bands)}: {list(map(str, paths))}"
        raise CutoutReadError(msg)
    planes = [read_cutout(p) for p in paths]
    for p, c in zip(paths, planes, strict=True):
        if c.image.shape[0] != 1:
            msg = f"{p}: expected a single-band image, found {c.image.shape[0]} bands"
            raise CutoutReadError(msg)
        if c.image.shape != planes[0].image.shape:
            msg = (
                f"{p}: shape {c.image.shape[1:]} differs from {planes[0].image.shape[1:]} of "
                f"{paths[0]}"
            )
            raise CutoutReadError(msg)
    first = planes[0]
    units = {c.flux_unit for c in planes}
    if len(units) > 1:
        found = {str(p): c.flux_unit for p, c in zip(paths, planes, strict=True)}
        msg = f"the band files give different pixel units (BUNIT): {found}"
        raise CutoutReadError(msg)
    return Cutout(
        image=np.concatenate([c.image for c in planes]),
        bands=tuple(bands),
        ra=first.ra,
        dec=first.dec,
        pixel_scale=first.pixel_scale,
        object_id=first.object_id,
        paths=tuple(str(p) for p in paths),
        flux_unit=first.flux_unit,
    )


#: Default file-name pattern of per-band files: ``<object_id>_<band>.fits[.gz|.fz]``.
BAND_FILE_PATTERN = r"(?P<object_id>.+)[_-](?P<band>[A-Za-z0-9]+)\.fits(?:\.gz|\.fz)?"


def group_band_files(paths, *, pattern=BAND_FILE_PATTERN):
    """Group per-band files by object with a regular expression on their file names.

    Parameters
    ----------
    paths : iterable of path
    pattern : str, optional
        Regular expression with named groups ``object_id`` and ``band``, matched against
        each file name.

    Returns
    -------
    dict of str to dict of str to pathlib.Path
        ``{object_id: {band: path}}`` in sorted object order.

    Raises
    ------
    CutoutReadError
        A file name does not match, or two files claim the same object and band.
    """
    regex = re.compile(pattern)
    groups = {}
    for p in sorted(map(Path, paths)):
        m = regex.fullmatch(p.name)
        if m is None:
            msg = f"{p}: file name does not match the per-band pattern {pattern!r}"
            raise CutoutReadError(msg)
        oid, band = m.group("object_id"), m.group("band")
        if band in groups.setdefault(oid, {}):
            msg = f"{p}: object {oid!r} band {band!r} already comes from {groups[oid][band]}"
            raise CutoutReadError(msg)
        groups[oid][band] = p
    return dict(sorted(groups.items()))


# --- writing ----------------------------------------------------------------------------

_SAFE_NAME = re.compile(r"[A-Za-z0-9._+-]+")


def cutout_header(*, ra, dec, shape, bands, pixel_scale, flux_unit="nmgy", extra=None):
    """FITS header of a cutout cube centred on ``(ra, dec)``.

    Parameters
    ----------
    ra, dec : float
        Centre of the cutout, degrees (ICRS).
    shape : tuple of int
        ``(bands, ny, nx)``.
    bands : sequence of str
        Band of each plane; written as ``BAND1``, ``BAND2``, ... and ``BANDS``.
    pixel_scale : float
        Arcsec per pixel; north up, east left.
    flux_unit : str, optional
        ``BUNIT``.
    extra : dict, optional
        More keywords, ``{name: value}`` or ``{name: (value, comment)}``.

    Returns
    -------
    astropy.io.fits.Header
    """
    _, ny, nx = shape
    h = fits.Header()
    h["WCSAXES"] = (3, "celestial axes 1-2; axis 3 is the band index")
    h["CTYPE1"] = "RA---TAN"
    h["CTYPE2"] = "DEC--TAN"
    h["CTYPE3"] = "BAND"
    h["CUNIT1"] = "deg"
    h["CUNIT2"] = "deg"
    h["CRVAL1"] = float(ra)
    h["CRVAL2"] = float(dec)
    h["CRVAL3"] = 1.0
    # FITS pixels are 1-based; the centre of an n-pixel axis is (n + 1) / 2.
    h["CRPIX1"] = (nx + 1) / 2
    h["CRPIX2"] = (ny + 1) / 2
    h["CRPIX3"] = 1.0
    h["CD1_1"] = -pixel_scale / 3600.0
    h["CD1_2"] = 0.0
    h["CD2_1"] = 0.0
    h["CD2_2"] = pixel_scale / 3600.0
    h["CD3_3"] = 1.0
    h["RADESYS"] = "ICRS"
    h["BUNIT"] = flux_unit
    h["PIXSCALE"] = (float(pixel_scale), "[arcsec] pixel scale")
    h["BANDS"] = (",".join(bands), "band of each plane, in order")
    for j, b in enumerate(bands, start=1):
        h[f"BAND{j}"] = (b, f"band of plane {j}")
    for key, value in (extra or {}).items():
        h[key] = value
    return h


def write_fits_cutout(path, image, header):
    """Write one cube ``(bands, ny, nx)`` as float32 to ``path``, atomically."""
    hdu = fits.PrimaryHDU(np.asarray(image, dtype=np.float32), header=header)
    with atomic_path(path) as tmp:
        hdu.writeto(tmp, overwrite=True)
    return Path(path)


def write_fits_cutouts(
    directory,
    images,
    table,
    *,
    bands,
    pixel_scale,
    flux_unit="nmgy",
    per_band_columns=("psf_fwhm", "noise_sigma"),
):
    """Write one FITS file per row of ``table`` into ``directory``, as ``<object_id>.fits``.

    The directory is assembled beside its final place and moved there only once every file
    is written, so an interrupted call leaves no partial directory behind.

    Parameters
    ----------
    directory : str or pathlib.Path
        Output directory (replaced if it exists).
    images : numpy.ndarray of shape (n, bands, ny, nx)
    table : astropy.table.Table
        Rows with ``object_id``, ``ra`` and ``dec`` (degrees).
    bands : sequence of str
    pixel_scale : float
        Arcsec per pixel.
    flux_unit : str, optional
    per_band_columns : sequence of str, optional
        Columns of shape ``(n, bands)`` written as numbered keywords (``PSFFWHM1``, ...).

    Returns
    -------
    list of pathlib.Path
    """
    import astropy.units as u

    directory = Path(directory)
    ids = [str(oid) for oid in table["object_id"]]
    for oid in ids:
        if not _SAFE_NAME.fullmatch(oid):
            msg = (
                f"object_id {oid!r} cannot name a FITS file: use letters, digits, '.', '_', "
                "'+' and '-' only"
            )
            raise ValueError(msg)
    if len(set(ids)) != len(ids):
        msg = "table has duplicate object_id values; each object needs its own FITS file"
        raise ValueError(msg)
    if len(ids) != len(images):
        msg = f"table has {len(ids)} rows but there are {len(images)} images"
        raise ValueError(msg)
    keys = {"psf_fwhm": "PSFFWHM", "noise_sigma": "SKYSIG"}
    ra = u.Quantity(table["ra"], u.deg).value
    dec = u.Quantity(table["dec"], u.deg).value
    written = []
    with atomic_directory(directory) as tmp:
        for i, row in enumerate(table):
            oid = str(row["object_id"])
            extra = {"OBJECT": oid, "ORIGIN": "astrounsup"}
            for col in per_band_columns:
                if col in table.colnames:
                    vals = np.atleast_1d(u.Quantity(row[col]).value)
                    unit = getattr(table[col], "unit", None)
                    for j, v in enumerate(vals, start=1):
                        extra[f"{keys.get(col, col[:7].upper())}{j}"] = (
                            float(v),
                            f"[{unit}] {col} in band {bands[j - 1]}",
                        )
            header = cutout_header(
                ra=ra[i],
                dec=dec[i],
                shape=images.shape[1:],
                bands=bands,
                pixel_scale=pixel_scale,
                flux_unit=flux_unit,
                extra=extra,
            )
            fits.PrimaryHDU(np.asarray(images[i], dtype=np.float32), header=header).writeto(
                tmp / f"{oid}.fits"
            )
            written.append(directory / f"{oid}.fits")
    return written
