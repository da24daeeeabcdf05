"""The built-in synthetic survey: multi-band cutouts of lenses, non-lenses and anomalies."""

from __future__ import annotations

import math
from dataclasses import dataclass

import astropy.units as u
import numpy as np
import torch
from astropy.table import QTable

from astrounsup._devices import parse_device
from astrounsup._progress import progress_bar
from astrounsup._provenance import provenance
from astrounsup.instrument import (
    BANDS,
    fft_convolve,
    flux_to_mag,
    kernel_half_width,
    moffat_kernel,
)
from astrounsup.simulate import _scene as sc
from astrounsup.simulate._random import seed_sequence
from astrounsup.simulate.artefacts import (
    bad_column,
    bleed_columns,
    cosmic_ray_spot,
    cosmic_ray_track,
    ghost_annulus,
    nan_blob,
    satellite_trail,
)
from astrounsup.simulate.camera import calibrate, expose, render_moffat, resample_noise
from astrounsup.simulate.lensing import ray_trace
from astrounsup.simulate.profiles import PixelGrid, render_sersic

__all__ = [
    "ANOMALY_KINDS",
    "NON_LENS_KINDS",
    "REALISM",
    "SimulatedSurvey",
    "simulate_lens_survey",
]

#: Kinds of ordinary non-lenses and their shares among them.
NON_LENS_KINDS = {"red_galaxy": 0.40, "disc_galaxy": 0.25, "galaxy_pair": 0.20, "star": 0.15}
#: Kinds of anomalies, drawn with equal probability.
ANOMALY_KINDS = ("satellite_trail", "cosmic_ray", "ghost", "ring_galaxy", "bleed_trail")

_PSF_BETA = 3.5
_OVERSAMPLE = 2
_BATCH = 128  # objects rendered together; fixed so results never depend on it
_SEEING_RANGE = (0.5, 2.2)  # arcsec: the clip applied to per-object seeing
_MIN_SIZE_SEEING = 6.0  # a cutout must span this many median-seeing FWHMs
_FOOTPRINT = (150.0, 2.2, 4.0)  # RA, Dec centre and side of the survey patch, deg
#: The realism switches of :func:`simulate_lens_survey`, all on by default.
REALISM = (
    "offsets",
    "neighbors",
    "correlated_noise",
    "clumpy_sources",
    "variable_depth",
    "realistic_artefacts",
)
_OFFSET_SIGMA_PX, _OFFSET_MAX_PX = 1.5, 4.0  # object centres off the cutout centre
_FIELD_GALAXIES, _FIELD_STARS = 5.3e-3, 1.1e-3  # unrelated objects per arcsec^2
_FIELD_MAG = (19.0, 24.0)  # r range of field galaxies (counts rise as 10**(0.35 m))
_NEIGHBOR_MIN_SEP = 2.5  # arcsec: field objects lie at least this far from the object
_EXPOSURES_REF = 4  # the BANDS depth is that of a coadd of this many exposures


@dataclass(frozen=True)
class SimulatedSurvey:
    """Cutouts and truth of a simulated survey.

    Attributes
    ----------
    images : numpy.ndarray of shape (n, bands, size, size), float32
        Sky-subtracted, noisy images in nanomaggies per pixel; NaN marks bad pixels.
    table : astropy.table.QTable
        One row per cutout: ``object_id``, ``ra``, ``dec`` and the truth (see
        ``catalogs/README.md`` for every column); provenance in ``table.meta``.
    bands : tuple of str
        Band of each image plane.
    pixel_scale : float
        Arcsec per pixel.
    """

    images: np.ndarray
    table: QTable
    bands: tuple[str, ...]
    pixel_scale: float

    def __len__(self):
        return self.images.shape[0]

    def summary(self):
        """A short human-readable description, as a string."""
        t = self.table
        kinds, counts = np.unique(np.asarray(t["kind"]), return_counts=True)
        lines = [
            f"{len(self)} cutouts of {self.images.shape[-1]}x{self.images.shape[-2]} px "
            f"at {self.pixel_scale} arcsec/px in bands {', '.join(self.bands)} "
            f"(seed {t.meta['seed']})",
            f"lenses: {int(np.sum(t['is_lens']))}, anomalies: {int(np.sum(t['is_anomaly']))}, "
            f"cutouts with NaN pixels: {int(np.sum(t['has_nan']))}",
            "kinds: " + ", ".join(f"{k} {c}" for k, c in zip(kinds, counts, strict=True)),
        ]
        lens = np.asarray(t["is_lens"])
        if lens.any():
            te = t["theta_e"][lens].to_value(u.arcsec)
            mu = np.asarray(t["magnification"][lens])
            lines.append(
                f"Einstein radii {te.min():.2f}-{te.max():.2f} arcsec, "
                f"source magnification median {np.median(mu):.1f}"
            )
        fwhm = t["psf_fwhm"].to_value(u.arcsec)
        sig = t["noise_sigma"].to_value(u.nmgy)
        for j, b in enumerate(self.bands):
            lines.append(
                f"  {b}: median PSF FWHM {np.median(fwhm[:, j]):.2f} arcsec, "
                f"median sky noise {np.median(sig[:, j]):.4f} nmgy/px"
            )
        return "\n".join(lines)


def _check_args(n, bands, size, pixel_scale, lens_fraction, anomaly_fraction, nan_fraction):
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
        msg = f"n must be a positive integer number of cutouts; got {n!r}"
        raise ValueError(msg)
    if isinstance(bands, str):
        bands = tuple(bands.split(",")) if "," in bands else tuple(bands)
    bands = tuple(bands)
    unknown = [b for b in bands if b not in BANDS]
    if not bands or unknown:
        msg = f"bands must be a non-empty sequence of {sorted(BANDS)}; got {bands!r}"
        if unknown:
            msg += f" (unknown: {unknown})"
        raise ValueError(msg)
    if len(set(bands)) != len(bands):
        msg = f"bands must not repeat; got {bands!r}"
        raise ValueError(msg)
    if not (isinstance(pixel_scale, (int, float)) and 0 < pixel_scale <= 1.0):
        msg = f"pixel_scale must be in (0, 1] arcsec; got {pixel_scale!r}"
        raise ValueError(msg)
    worst = max(BANDS[b].seeing for b in bands)
    min_size = max(16, math.ceil(_MIN_SIZE_SEEING * worst / pixel_scale))
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < min_size:
        msg = (
            f"size must be an integer >= {min_size} px, so the cutout spans "
            f"{_MIN_SIZE_SEEING:g} FWHM of the PSF ({worst} arcsec in band "
            f"{max(bands, key=lambda b: BANDS[b].seeing)}) at {pixel_scale} arcsec/px; "
            f"got {size!r}"
        )
        raise ValueError(msg)
    for name, value in (
        ("lens_fraction", lens_fraction),
        ("anomaly_fraction", anomaly_fraction),
        ("nan_fraction", nan_fraction),
    ):
        if not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
            msg = f"{name} must be in [0, 1]; got {value!r}"
            raise ValueError(msg)
    if lens_fraction + anomaly_fraction > 1.0:
        msg = (
            "lens_fraction + anomaly_fraction must be <= 1; got "
            f"{lens_fraction} + {anomaly_fraction}"
        )
        raise ValueError(msg)
    return bands


def _assign_kinds(rng, n, lens_fraction, anomaly_fraction):
    n_lens = round(n * lens_fraction)
    n_anom = min(round(n * anomaly_fraction), n - n_lens)
    n_other = n - n_lens - n_anom
    shares = np.array(list(NON_LENS_KINDS.values()))
    counts = np.floor(shares * n_other).astype(int)
    counts[: n_other - counts.sum()] += 1
    kinds = ["lens"] * n_lens
    for kind, c in zip(NON_LENS_KINDS, counts, strict=True):
        kinds += [kind] * int(c)
    kinds += list(rng.choice(ANOMALY_KINDS, size=n_anom))
    kinds = np.array(kinds, dtype="U16")
    rng.shuffle(kinds)
    return kinds


def _sky_positions(rng, n):
    ra0, dec0, side = _FOOTPRINT
    half = np.deg2rad(side / 2)
    sin_lo, sin_hi = np.sin(np.deg2rad(dec0) - half), np.sin(np.deg2rad(dec0) + half)
    dec = np.rad2deg(np.arcsin(rng.uniform(sin_lo, sin_hi, n)))
    ra = ra0 + rng.uniform(-side / 2, side / 2, n) / np.cos(np.deg2rad(dec0))
    return ra, dec


def _draw_centres(rng, n, pixel_scale, offsets):
    """Centre of each object, arcsec from the cutout centre, ``(2, n)``: a small detection
    centring error, plus with ``offsets`` a 2-D Gaussian offset of 1.5 px per axis capped
    at 4 px (a cutout cut around a catalog position, not the light)."""
    centre = rng.normal(0.0, 0.1, (2, n))
    if offsets:
        off = rng.normal(0.0, _OFFSET_SIGMA_PX, (2, n))
        r = np.hypot(*off)
        off *= np.minimum(1.0, _OFFSET_MAX_PX / np.maximum(r, 1e-12))
        centre = centre + off * pixel_scale
    return centre


def _add_clumps(comps, rng, idx, d, flux, centre):
    """Star-forming knots in the lensed sources of lenses ``idx``: 1-5 compact components
    that take 15-45% of the source's light, scattered over its half-light radius.
    Returns the main source's flux and the number of knots of each lens."""
    m = idx.size
    n_knots = rng.integers(1, 6, m)
    share = rng.uniform(0.15, 0.45, m)
    for j in range(m):
        k = int(n_knots[j])
        weights = rng.dirichlet(np.ones(k)) * share[j]
        spread = 0.8 * d["source_r_e"][j]
        comps.add(
            np.full(k, idx[j]),
            sc.LENSED,
            weights[:, None] * flux[j][None, :],
            x0=d["source_x"][j] + centre[0, j] + rng.normal(0.0, spread, k),
            y0=d["source_y"][j] + centre[1, j] + rng.normal(0.0, spread, k),
            r_e=rng.uniform(0.03, 0.08, k),
            n=0.5,
            q=rng.uniform(0.6, 1.0, k),
            phi=rng.uniform(0.0, np.pi, k),
        )
    return flux * (1.0 - share)[:, None], n_knots


def _add_neighbors(comps, rng, centre, bands, size, pixel_scale):
    """Unrelated field galaxies and stars in every cutout, at the same rate whatever the
    object is, at least 2.5 arcsec from it. Returns the number in each cutout."""
    n = centre.shape[1]
    side = size * pixel_scale
    area = side**2
    counts = np.zeros(n, dtype=int)
    for rate, is_star in ((_FIELD_GALAXIES, False), (_FIELD_STARS, True)):
        k = rng.poisson(rate * area, n)
        objs = np.repeat(np.arange(n), k)
        x, y = rng.uniform(-side / 2, side / 2, (2, objs.size))
        # Redraw those too close to the object (a few rounds; the rest are dropped).
        for _ in range(8):
            near = np.hypot(x - centre[0, objs], y - centre[1, objs]) < _NEIGHBOR_MIN_SEP
            if not near.any():
                break
            x[near], y[near] = rng.uniform(-side / 2, side / 2, (2, int(near.sum())))
        keep = np.hypot(x - centre[0, objs], y - centre[1, objs]) >= _NEIGHBOR_MIN_SEP
        objs, x, y = objs[keep], x[keep], y[keep]
        np.add.at(counts, objs, 1)
        m = objs.size
        if is_star:
            stars = sc.star_fluxes(rng, rng.uniform(17.0, 23.0, m), bands)
            comps.add(objs, sc.POINT, stars, x0=x, y0=y, neighbor=1.0)
            continue
        lo, hi = (10 ** (0.35 * v) for v in _FIELD_MAG)
        mag = np.log10(lo + rng.uniform(size=m) * (hi - lo)) / 0.35
        red = rng.uniform(size=m) < 0.3
        flux = np.where(
            red[:, None],
            sc.colour_fluxes(rng, mag, "red", bands),
            sc.colour_fluxes(rng, mag, "disc", bands),
        )
        comps.add(
            objs,
            sc.SERSIC,
            flux,
            x0=x,
            y0=y,
            r_e=rng.uniform(0.25, 0.9, m) * 10 ** (-0.1 * (mag - 20.0)),
            n=np.where(red, rng.uniform(2.5, 4.0, m), 1.0),
            q=np.where(red, rng.uniform(0.6, 1.0, m), rng.uniform(0.2, 1.0, m)),
            phi=rng.uniform(0.0, np.pi, m),
            neighbor=1.0,
        )
    return counts


def _draw_scene(rng, kinds, bands, size, pixel_scale, options, rng_field):
    """Components, lens parameters, artefact draws and per-object scene truth."""
    n, nb = kinds.size, len(bands)
    comps = sc.Components(nb)
    lens = {
        k: np.full(n, np.nan)
        for k in ("theta_e", "q", "phi", "gamma1", "gamma2", "source_x", "source_y", "x0", "y0")
    }
    source_flux = np.full((n, nb), np.nan)
    jitter = _draw_centres(rng, n, pixel_scale, options["offsets"])
    truth = {"centre": jitter, "source_knots": np.zeros(n, dtype=int)}

    idx = np.nonzero(kinds == "lens")[0]
    if idx.size:
        d = sc.draw_lenses(rng, idx.size)
        comps.add(
            idx,
            sc.SERSIC,
            sc.colour_fluxes(rng, d["mag_r"], "red", bands),
            x0=jitter[0, idx],
            y0=jitter[1, idx],
            r_e=d["r_e"],
            n=d["n"],
            q=d["q"],
            phi=d["phi"],
        )
        source_flux[idx] = sc.colour_fluxes(rng, d["source_mag_r"], "blue", bands)
        main_flux = source_flux[idx]
        if options["clumpy_sources"]:
            main_flux, truth["source_knots"][idx] = _add_clumps(
                comps, rng, idx, d, source_flux[idx], jitter[:, idx]
            )
        comps.add(
            idx,
            sc.LENSED,
            main_flux,
            x0=d["source_x"] + jitter[0, idx],
            y0=d["source_y"] + jitter[1, idx],
            r_e=d["source_r_e"],
            n=d["source_n"],
            q=d["source_q"],
            phi=d["source_phi"],
        )
        lens["theta_e"][idx] = d["theta_e"]
        lens["q"][idx] = d["q_mass"]
        lens["phi"][idx] = d["phi_mass"]
        lens["gamma1"][idx] = d["gamma1"]
        lens["gamma2"][idx] = d["gamma2"]
        lens["source_x"][idx] = d["source_x"]
        lens["source_y"][idx] = d["source_y"]
        lens["x0"][idx] = jitter[0, idx]
        lens["y0"][idx] = jitter[1, idx]

    # Anomalous artefacts sit on top of an ordinary galaxy.
    hosts = np.isin(kinds, ("satellite_trail", "cosmic_ray", "ghost", "bleed_trail"))
    red_host = hosts & (rng.uniform(size=n) < 0.5)
    for mask in (kinds == "red_galaxy", red_host):
        idx = np.nonzero(mask)[0]
        sc.add_red_galaxies(comps, rng, idx, bands, jitter[0, idx], jitter[1, idx])
    idx = np.nonzero((kinds == "disc_galaxy") | (hosts & ~red_host))[0]
    sc.add_disc_galaxies(comps, rng, idx, bands, jitter[0, idx], jitter[1, idx])

    idx = np.nonzero(kinds == "galaxy_pair")[0]
    if idx.size:
        _add_pairs(comps, rng, idx, bands, jitter[:, idx])

    idx = np.nonzero(kinds == "star")[0]
    comps.add(
        idx,
        sc.POINT,
        sc.star_fluxes(rng, rng.uniform(16.5, 21.5, idx.size), bands),
        x0=jitter[0, idx],
        y0=jitter[1, idx],
    )

    idx = np.nonzero(kinds == "ring_galaxy")[0]
    if idx.size:
        m = idx.size
        ring_mag = rng.uniform(18.5, 20.5, m)
        comps.add(
            idx,
            sc.RING,
            sc.colour_fluxes(rng, ring_mag, "blue", bands),
            x0=jitter[0, idx],
            y0=jitter[1, idx],
            r_e=rng.uniform(1.5, 4.0, m),
            width=rng.uniform(0.15, 0.4, m),
            q=rng.uniform(0.5, 1.0, m),
            phi=rng.uniform(0, np.pi, m),
            knots=rng.integers(3, 9, m),
            knot_amp=rng.uniform(0.3, 0.9, m),
            knot_phase=rng.uniform(0, 2 * np.pi, m),
        )
        comps.add(
            idx,
            sc.SERSIC,
            sc.colour_fluxes(rng, ring_mag + rng.uniform(0.5, 2.0, m), "red", bands),
            x0=jitter[0, idx],
            y0=jitter[1, idx],
            r_e=rng.uniform(0.3, 0.8, m),
            n=rng.uniform(1.5, 4.0, m),
            q=rng.uniform(0.7, 1.0, m),
            phi=rng.uniform(0, np.pi, m),
        )

    artefacts = _draw_artefacts(
        rng, kinds, bands, size, pixel_scale, comps, options["realistic_artefacts"]
    )
    truth["n_neighbors"] = (
        _add_neighbors(comps, rng_field, jitter, bands, size, pixel_scale)
        if options["neighbors"]
        else np.zeros(n, dtype=int)
    )
    return comps.finish(), lens, source_flux, artefacts, truth


def _add_pairs(comps, rng, idx, bands, jitter):
    """Galaxy pairs; half have a small blue tangential companion that mimics an arc."""
    m = idx.size
    red = rng.uniform(size=m) < 0.5
    sc.add_red_galaxies(comps, rng, idx[red], bands, jitter[0, red], jitter[1, red])
    sc.add_disc_galaxies(comps, rng, idx[~red], bands, jitter[0, ~red], jitter[1, ~red])
    arc_like = rng.uniform(size=m) < 0.5
    ang = rng.uniform(0, 2 * np.pi, m)
    sep = np.where(arc_like, rng.uniform(1.0, 2.8, m), rng.uniform(1.5, 5.0, m))
    cx, cy = jitter[0] + sep * np.cos(ang), jitter[1] + sep * np.sin(ang)
    a = np.nonzero(arc_like)[0]
    comps.add(
        idx[a],
        sc.SERSIC,
        sc.colour_fluxes(rng, rng.uniform(20.5, 22.5, a.size), "blue", bands),
        x0=cx[a],
        y0=cy[a],
        r_e=rng.uniform(0.2, 0.6, a.size),
        n=1.0,
        q=rng.uniform(0.15, 0.4, a.size),
        phi=ang[a] + np.pi / 2,
    )
    o = np.nonzero(~arc_like)[0]
    comps_red = rng.uniform(size=o.size) < 0.5
    sc.add_red_galaxies(comps, rng, idx[o[comps_red]], bands, cx[o[comps_red]], cy[o[comps_red]])
    sc.add_disc_galaxies(
        comps,
        rng,
        idx[o[~comps_red]],
        bands,
        cx[o[~comps_red]],
        cy[o[~comps_red]],
        mag_r=rng.uniform(19.0, 22.0, int((~comps_red).sum())),
    )


def _draw_artefacts(rng, kinds, bands, size, pixel_scale, comps, realistic):
    """Parameters of the artefact of each anomaly, keyed by object index.

    With ``realistic``, as they appear in coadds: trails of any width and brightness, in
    only some bands (the satellite crossed during some exposures) and often broken into
    segments; cosmic-ray residuals as single hits, straight tracks, curved worms and
    compact spots; ghosts of any radius, width and contrast. Each entry also records the
    bands it appears in and its shape, for the truth table.
    """
    half = size * pixel_scale / 2
    nb = len(bands)
    out = {}
    solar = sc.colour_fluxes(rng, np.full(kinds.size, 22.5), "solar", bands)
    sig = np.array([BANDS[b].noise_sigma(pixel_scale) for b in bands])
    every = "".join(bands)
    for i in np.nonzero(np.isin(kinds, ANOMALY_KINDS))[0]:
        kind = kinds[i]
        if kind == "satellite_trail":
            colour = solar[i] / solar[i, 0]
            if not realistic:
                out[i] = {
                    "angle": rng.uniform(0, np.pi),
                    "offset": rng.uniform(-0.7, 0.7) * half,
                    "fwhm": rng.uniform(0.8, 2.0),
                    "peak": rng.uniform(3.0, 30.0) * sig[0] * colour,
                    "bands": every,
                    "shape": "whole",
                }
                continue
            present = rng.uniform(size=nb) < 0.7
            present[rng.integers(nb)] = True
            gaps = []
            if rng.uniform() < 0.4:
                gaps = [
                    (rng.uniform(-half, half), rng.uniform(1.0, 6.0))
                    for _ in range(int(rng.integers(1, 4)))
                ]
            out[i] = {
                "angle": rng.uniform(0, np.pi),
                "offset": rng.uniform(-0.7, 0.7) * half,
                "fwhm": rng.uniform(0.5, 3.0),
                "peak": rng.uniform(2.0, 30.0) * sig[0] * colour
                * rng.uniform(0.5, 1.5, nb) * present,
                "gaps": gaps,
                "bands": "".join(b for b, on in zip(bands, present, strict=True) if on),
                "shape": f"{len(gaps) + 1} segments" if gaps else "whole",
            }  # fmt: skip
        elif kind == "ghost":
            r_in = rng.uniform(1.0, 10.0) if realistic else rng.uniform(2.0, 8.0)
            out[i] = {
                "x0": rng.uniform(-half, half),
                "y0": rng.uniform(-half, half),
                "r_in": r_in,
                "r_out": r_in + (rng.uniform(0.5, 5.0) if realistic else rng.uniform(1.0, 4.0)),
                "softness": rng.uniform(0.2, 1.0) if realistic else 0.3,
                "level": (rng.uniform(0.5, 3.0) if realistic else rng.uniform(0.7, 3.0)) * sig,
                "bands": every,
                "shape": "annulus",
            }
        elif kind == "cosmic_ray":
            hits = []
            for _ in range(int(rng.integers(1, 5))):
                shape = rng.choice(("point", "track", "worm", "spot")) if realistic else "track"
                hit = {
                    "shape": str(shape),
                    "row": rng.uniform(0, size - 1),
                    "col": rng.uniform(0, size - 1),
                    "deposit": rng.uniform(1.0e3, 2.0e4),
                }
                if shape == "spot":
                    hit["radius"] = rng.uniform(0.6, 1.5)
                else:
                    hit["angle"] = rng.uniform(0, 2 * np.pi)
                    hit["length"] = {
                        "point": rng.uniform(0.0, 1.0),
                        "track": rng.uniform(3.0, 15.0) if realistic else rng.uniform(0.0, 6.0),
                        "worm": rng.uniform(4.0, 12.0),
                    }[str(shape)]
                    hit["curvature"] = (
                        rng.choice((-1, 1)) * rng.uniform(0.1, 0.4) if shape == "worm" else 0.0
                    )
                hits.append(hit)
            band = int(rng.integers(nb))
            out[i] = {
                "band": band,
                "hits": hits,
                "bands": bands[band],
                "shape": "+".join(sorted({h["shape"] for h in hits})),
            }
        elif kind == "bleed_trail":
            x0, y0 = rng.uniform(-0.7, 0.7, 2) * half
            comps.add(
                np.array([i]),
                sc.POINT,
                sc.star_fluxes(rng, np.array([rng.uniform(12.5, 14.5)]), bands),
                x0=x0,
                y0=y0,
            )
            out[i] = {"bands": every, "shape": "saturated star"}
    return out


def _draw_nan(rng, n, nb, size, nan_fraction):
    """Bad-pixel masks for a ``nan_fraction`` of the cutouts: {index: (bands, ny, nx) mask}."""
    out = {}
    for i in np.nonzero(rng.uniform(size=n) < nan_fraction)[0]:
        mask = np.zeros((nb, size, size), dtype=bool)
        which = slice(None) if rng.uniform() < 0.5 else int(rng.integers(nb))
        if rng.uniform() < 0.6:
            m2 = nan_blob(
                (size, size),
                row=rng.uniform(0, size - 1),
                col=rng.uniform(0, size - 1),
                radius=rng.uniform(1.0, 4.0),
            )
        else:
            start = int(rng.integers(0, size // 2)) if rng.uniform() < 0.5 else 0
            m2 = bad_column(
                (size, size), col=int(rng.integers(size)), row_start=start, row_stop=size
            )
        mask[which] |= m2
        out[i] = mask
    return out


def _render_ring(grid, c):
    """Knotty elliptical rings of unit flux, (C, G, G)."""
    t = {
        k: torch.as_tensor(c[k], dtype=grid.x.dtype, device=grid.x.device)
        for k in ("x0", "y0", "r_e", "width", "q", "phi", "knots", "knot_amp", "knot_phase")
    }
    cos, sin = torch.cos(t["phi"])[:, None, None], torch.sin(t["phi"])[:, None, None]
    dx = grid.x[None, None, :] - t["x0"][:, None, None]
    dy = grid.y[None, :, None] - t["y0"][:, None, None]
    xp = cos * dx + sin * dy
    yp = (-sin * dx + cos * dy) / t["q"][:, None, None]
    rad = torch.sqrt(xp * xp + yp * yp)
    azim = torch.atan2(yp, xp)
    profile = torch.exp(-0.5 * ((rad - t["r_e"][:, None, None]) / t["width"][:, None, None]) ** 2)
    knots = 1.0 + t["knot_amp"][:, None, None] * torch.cos(
        t["knots"][:, None, None] * azim + t["knot_phase"][:, None, None]
    )
    img = grid.bin(profile * knots)
    return img / img.sum(dim=(-2, -1), keepdim=True)


def _render_batch(lo, hi, comps, lens, fwhm, size, pixel_scale, device):
    """Noise-free, PSF-convolved model of objects [lo, hi) in nmgy, (m, B, G, G)."""
    m, nb = hi - lo, fwhm.shape[1]
    # The margin rendered around the cutout holds the light the PSF spreads into it.
    pad = kernel_half_width(float(fwhm[lo:hi].max()), pixel_scale)
    grid = PixelGrid(
        size + 2 * pad, pixel_scale=pixel_scale, oversample=_OVERSAMPLE, device=device
    )
    dev, dt = grid.x.device, grid.x.dtype
    g = grid.size
    a, b = np.searchsorted(comps["obj"], [lo, hi])
    c = {k: v[a:b] for k, v in comps.items()}
    local = torch.as_tensor(c["obj"] - lo, device=dev)
    flux = torch.as_tensor(c["flux"], dtype=dt, device=dev)
    extended = torch.zeros(m, nb, g, g, dtype=dt, device=dev)
    magnification = np.full(m, np.nan)
    arcs = None  # the lensed light alone, for its signal-to-noise

    def scatter(sel, unit_images, also=None):
        sel_t = torch.as_tensor(sel, device=dev)
        contrib = unit_images[:, None] * flux[sel_t][:, :, None, None]
        extended.index_add_(0, local[sel_t], contrib)
        if also is not None:
            also.index_add_(0, local[sel_t], contrib)

    def profile(sel):
        return {k: c[k][sel] for k in ("x0", "y0", "r_e", "n", "q", "phi")}

    sel = np.nonzero(c["kind"] == sc.SERSIC)[0]
    if sel.size:
        scatter(sel, render_sersic(grid, **profile(sel)))
    sel = np.nonzero(c["kind"] == sc.LENSED)[0]
    if sel.size:
        obj = c["obj"][sel]

        def p(key):
            return torch.as_tensor(lens[key][obj], dtype=dt, device=dev)[:, None, None]

        # The lens is centred on its light.
        x0 = torch.as_tensor(lens["x0"][obj], dtype=dt, device=dev)
        y0 = torch.as_tensor(lens["y0"][obj], dtype=dt, device=dev)
        bx, by = ray_trace(
            grid.x[None, None, :],
            grid.y[None, :, None],
            theta_e=p("theta_e"),
            q=p("q"),
            phi=p("phi"),
            gamma1=p("gamma1"),
            gamma2=p("gamma2"),
            x0=x0[:, None, None],
            y0=y0[:, None, None],
        )
        imgs = render_sersic(grid, **profile(sel), source_x=bx, source_y=by)
        # A unit-flux component: the lensed image's total flux is its magnification; an
        # object's is the flux-weighted mean over its source's components (first band).
        mu = imgs.sum(dim=(-2, -1)).double().cpu().numpy()
        w = c["flux"][sel, 0]
        num, den = np.zeros(m), np.zeros(m)
        np.add.at(num, obj - lo, w * mu)
        np.add.at(den, obj - lo, w)
        has = den > 0
        magnification[has] = num[has] / den[has]
        arcs = torch.zeros_like(extended)
        scatter(sel, imgs, also=arcs)
    sel = np.nonzero(c["kind"] == sc.RING)[0]
    if sel.size:
        scatter(sel, _render_ring(grid, {k: v[sel] for k, v in c.items()}))

    fwhm_t = torch.as_tensor(fwhm[lo:hi], dtype=dt, device=dev)
    kernels = moffat_kernel(
        fwhm[lo:hi], pixel_scale=grid.pixel_scale, beta=_PSF_BETA, device=dev, dtype=dt
    )
    model = fft_convolve(extended, kernels)
    sel = np.nonzero(c["kind"] == sc.POINT)[0]
    if sel.size:
        sel_t = torch.as_tensor(sel, device=dev)
        pts = render_moffat(
            grid,
            x0=torch.as_tensor(c["x0"][sel], dtype=dt, device=dev),
            y0=torch.as_tensor(c["y0"][sel], dtype=dt, device=dev),
            fwhm=fwhm_t[local[sel_t]],
            flux=flux[sel_t],
            beta=_PSF_BETA,
        )
        model.index_add_(0, local[sel_t], pts)
    crop = (..., slice(pad, pad + size), slice(pad, pad + size))
    arc_model = None
    if arcs is not None:
        rows = torch.unique(local[torch.as_tensor(np.nonzero(c["kind"] == sc.LENSED)[0])])
        arc_model = (rows.cpu().numpy(), fft_convolve(arcs[rows], kernels[rows])[crop])
    return model[crop], magnification, arc_model


def simulate_lens_survey(
    n,
    *,
    bands=("g", "r", "i"),
    size=64,
    pixel_scale=0.263,
    lens_fraction=0.5,
    anomaly_fraction=0.01,
    nan_fraction=0.02,
    offsets=True,
    neighbors=True,
    correlated_noise=True,
    clumpy_sources=True,
    variable_depth=True,
    realistic_artefacts=True,
    seed=None,
    device=None,
    progress=True,
):
    """Simulate a multi-band survey of cutouts of lenses, non-lenses and anomalies.

    Lenses are singular isothermal ellipsoids with external shear (Einstein radii
    0.8-2.5 arcsec) whose red Sérsic light sits in front of a blue elliptical Sérsic source;
    depending on the source position the source appears as a ring, arcs or multiple images.
    Non-lenses are the same red galaxies without a source (the hardest negatives), disc
    galaxies with bulges, galaxy pairs (half with a blue tangential companion that mimics an
    arc) and stars. Anomalies are satellite trails, cosmic rays, ghosts, ring galaxies and
    bleed trails of saturated stars. Each object is seen through a Moffat PSF of its own
    per-band seeing, on a sky of its own brightness, with Poisson noise through the gain and
    read noise, and a ``nan_fraction`` of cutouts carry NaN blobs or bad columns.

    The switches make the cutouts look like those of a real coadd (all on by default; each
    has a truth column): ``offsets`` (objects 1.5 px rms off the cutout centre, at most
    4 px: ``offset_x``, ``offset_y``), ``neighbors`` (unrelated field galaxies and stars,
    Poisson-distributed at the same rate in every cutout, at least 2.5 arcsec from the
    object: ``n_neighbors``), ``correlated_noise`` (the noise of a resampled coadd: each
    pixel's noise mixed with its neighbours' by a kernel of unit power, so the variance is
    kept: ``noise_correlation``, the correlation of adjacent pixels), ``clumpy_sources``
    (1-5 star-forming knots in each lensed source: ``source_knots``), ``variable_depth``
    (a coadd of 1 to ~10 exposures per object and band, so depth and seeing vary per band:
    ``n_exposures``) and ``realistic_artefacts`` (trails of any width and brightness, in
    only some bands, often in segments; cosmic-ray points, tracks, worms and spots; ghosts
    of any radius and contrast: ``artefact_bands``, ``artefact_shape``).

    Parameters
    ----------
    n : int
        Number of cutouts, > 0.
    bands : sequence of str, optional
        Bands from ``astrounsup.instrument.BANDS`` (``g, r, i, z, Y``).
    size : int, optional
        Cutout side in pixels; must span 6 median-seeing FWHMs (26 px at 0.263 arcsec/px).
    pixel_scale : float, optional
        Arcsec per pixel, in (0, 1].
    lens_fraction, anomaly_fraction : float, optional
        Fractions of lenses and anomalies, each in [0, 1], together <= 1 (the counts are
        rounded, not drawn). Real surveys hold ~1e-3 lenses; 0.01 is a supported setting.
    nan_fraction : float, optional
        Expected fraction of cutouts with bad (NaN) pixels, in [0, 1].
    offsets, neighbors, correlated_noise : bool, optional
        The realism switches above.
    clumpy_sources, variable_depth, realistic_artefacts : bool, optional
        The realism switches above.
    seed : int, numpy.random.SeedSequence or None, optional
        Seed; the same seed gives the same survey. ``None`` draws fresh entropy, which is
        recorded in ``table.meta["seed"]`` so the survey can be made again.
    device : str or torch.device, optional
        Where the images are rendered (default CPU; ``"cuda"`` renders on a GPU). The noise
        is drawn on the CPU either way.
    progress : bool, optional
        Show a progress bar (``tqdm.auto``).

    Returns
    -------
    SimulatedSurvey
        Images of shape ``(n, len(bands), size, size)`` in nanomaggies and the truth table.

    Raises
    ------
    ValueError
        For ``n <= 0``, an unknown band, a ``size`` too small for the PSF, fractions
        outside [0, 1], or a switch that is not a bool.

    Examples
    --------
    >>> survey = simulate_lens_survey(20, seed=1)
    >>> survey.images.shape
    (20, 3, 64, 64)
    >>> int(survey.table["is_lens"].sum())
    10
    >>> clean = simulate_lens_survey(4, seed=1, neighbors=False, offsets=False)
    >>> clean.table["n_neighbors"].tolist()
    [0, 0, 0, 0]
    """
    bands = _check_args(n, bands, size, pixel_scale, lens_fraction, anomaly_fraction, nan_fraction)
    options = {
        "offsets": offsets,
        "neighbors": neighbors,
        "correlated_noise": correlated_noise,
        "clumpy_sources": clumpy_sources,
        "variable_depth": variable_depth,
        "realistic_artefacts": realistic_artefacts,
    }
    for name, value in options.items():
        if not isinstance(value, (bool, np.bool_)):
            msg = f"{name} must be True or False; got {value!r}"
            raise ValueError(msg)
    ss = seed_sequence(seed)
    rng_kind, rng_scene, rng_obs, rng_poisson, rng_read, rng_nan, rng_field, rng_corr = (
        np.random.default_rng(s) for s in ss.spawn(8)
    )
    nb = len(bands)
    band_objs = [BANDS[b] for b in bands]
    kinds = _assign_kinds(rng_kind, n, lens_fraction, anomaly_fraction)
    ra, dec = _sky_positions(rng_obs, n)
    obs = _observing_conditions(rng_obs, n, band_objs, pixel_scale, variable_depth)
    fwhm, sky_e, e_per_nmgy, read_noise = (
        obs[k] for k in ("fwhm", "sky_e", "e_per_nmgy", "read_noise")
    )

    comps, lens, source_flux, artefacts, scene = _draw_scene(
        rng_scene, kinds, bands, size, pixel_scale, options, rng_field
    )
    nan_masks = _draw_nan(rng_nan, n, nb, size, nan_fraction)
    mix = rng_corr.uniform(0.15, 0.45, n) if correlated_noise else np.zeros(n)

    device = parse_device(device) if device is not None else None
    images = np.empty((n, nb, size, size), dtype=np.float32)
    magnification = np.full(n, np.nan)
    arc_snr = np.full(n, np.nan)
    bar = progress_bar(total=n, desc="simulating", unit="cutout", enabled=progress)
    with torch.inference_mode(), bar:
        for lo in range(0, n, _BATCH):
            hi = min(lo + _BATCH, n)
            bar.update(hi - lo)
            model, mu, arc_model = _render_batch(
                lo, hi, comps, lens, fwhm, size, pixel_scale, device
            )
            magnification[lo:hi] = mu
            if arc_model is not None:
                rows, arc = arc_model[0] + lo, arc_model[1].double().cpu().numpy()
                sig2 = obs["noise_sigma"][rows][:, :, None, None] ** 2
                arc_snr[rows] = np.sqrt((arc**2 / sig2).sum(axis=(1, 2, 3)))
            model = model.double().cpu().numpy()
            for i, art in artefacts.items():
                if lo <= i < hi:
                    model[i - lo] += _light_artefact(kinds[i], art, size, pixel_scale)
            electrons = expose(
                model,
                sky_electrons=sky_e[lo:hi],
                electrons_per_nmgy=e_per_nmgy[lo:hi],
                read_noise=read_noise[lo:hi],
                poisson_rng=rng_poisson,
                read_rng=rng_read,
            )
            if correlated_noise:
                expected = np.clip(model, 0.0, None) * e_per_nmgy[lo:hi, :, None, None]
                expected += sky_e[lo:hi, :, None, None]
                electrons = expected + resample_noise(electrons - expected, mix[lo:hi])
            # Detector artefacts stay sharp: they are not part of the resampled noise.
            for i, art in artefacts.items():
                if lo <= i < hi:
                    electrons[i - lo] = _detector_artefact(
                        kinds[i], art, electrons[i - lo], band_objs
                    )
            images[lo:hi] = calibrate(
                electrons, sky_electrons=sky_e[lo:hi], electrons_per_nmgy=e_per_nmgy[lo:hi]
            )
    for i, mask in nan_masks.items():
        images[i][mask] = np.nan
    observed = {
        "ra": ra,
        "dec": dec,
        "fwhm": fwhm,
        "noise_sigma": obs["noise_sigma"],
        "n_exposures": obs["n_exposures"],
        "source_flux": source_flux,
        "magnification": magnification,
        "arc_snr": arc_snr,
        "noise_correlation": 2 * mix / (1 + 2 * mix**2),
        "artefacts": artefacts,
        **scene,
    }
    call_args = {
        "n": n,
        "size": size,
        "pixel_scale": pixel_scale,
        "lens_fraction": lens_fraction,
        "anomaly_fraction": anomaly_fraction,
        "nan_fraction": nan_fraction,
        **options,
    }
    table = _truth_table(kinds, bands, comps, lens, observed, images, ss, call_args)
    return SimulatedSurvey(images=images, table=table, bands=bands, pixel_scale=pixel_scale)


def _observing_conditions(rng, n, band_objs, pixel_scale, variable_depth):
    """Seeing, sky, calibration and noise of each object and band.

    A common seeing factor per object with a small chromatic scatter, and a sky a little
    brighter or darker than the median. With ``variable_depth`` each band is a coadd of
    its own number of exposures (1 + Poisson(3)): its exposure time, so its calibration,
    sky and read noise, scale with that number relative to 4, and its seeing scatters by
    10% about the object's.
    """
    nb = len(band_objs)
    seeing_factor = np.exp(rng.normal(0.0, 0.18, n))
    fwhm = np.array([bd.seeing for bd in band_objs])[None, :] * seeing_factor[:, None]
    chromatic = 0.10 if variable_depth else 0.03
    fwhm = np.clip(fwhm * (1 + rng.normal(0.0, chromatic, (n, nb))), *_SEEING_RANGE)
    sky_mag = np.array([bd.sky_mag for bd in band_objs])[None, :] + rng.normal(0.0, 0.15, (n, nb))
    n_exp = 1 + rng.poisson(3.0, (n, nb)) if variable_depth else np.full((n, nb), _EXPOSURES_REF)
    t = n_exp / _EXPOSURES_REF
    e_per_nmgy = np.array([bd.electrons_per_nmgy() for bd in band_objs])[None, :] * t
    read_noise = np.array([bd.read_noise for bd in band_objs])[None, :] * np.sqrt(t)
    sky_e = (
        np.stack(
            [bd.sky_electrons(pixel_scale, sky_mag[:, j]) for j, bd in enumerate(band_objs)],
            axis=1,
        )
        * t
    )
    return {
        "fwhm": fwhm,
        "sky_e": sky_e,
        "e_per_nmgy": e_per_nmgy,
        "read_noise": read_noise,
        "noise_sigma": np.sqrt(sky_e + read_noise**2) / e_per_nmgy,
        "n_exposures": n_exp,
    }


def _light_artefact(kind, art, size, pixel_scale):
    if kind == "satellite_trail":
        keys = ("angle", "offset", "fwhm", "peak", "gaps")
        return satellite_trail(
            (size, size), pixel_scale=pixel_scale, **{k: art[k] for k in keys if k in art}
        )
    if kind == "ghost":
        keys = ("x0", "y0", "r_in", "r_out", "softness", "level")
        return ghost_annulus((size, size), pixel_scale=pixel_scale, **{k: art[k] for k in keys})
    return 0.0


def _detector_artefact(kind, art, electrons, band_objs):
    """A cosmic ray's charge or a saturated star's bleeding, on one cutout's electrons.

    A cosmic ray hits one exposure of a coadd: whatever the number of exposures, its
    residual in the coadd's electrons is the same ``deposit``.
    """
    if kind == "cosmic_ray":
        b = art["band"]
        for hit in art["hits"]:
            deposit = hit["deposit"]
            if hit["shape"] == "spot":
                electrons[b] += cosmic_ray_spot(
                    electrons.shape[-2:], row=hit["row"], col=hit["col"], radius=hit["radius"],
                    deposit=deposit,
                )  # fmt: skip
            else:
                electrons[b] += cosmic_ray_track(
                    electrons.shape[-2:], row=hit["row"], col=hit["col"], angle=hit["angle"],
                    length=hit["length"], deposit=deposit, curvature=hit["curvature"],
                )  # fmt: skip
    elif kind == "bleed_trail":
        for j, bd in enumerate(band_objs):
            electrons[j] = bleed_columns(electrons[j], bd.full_well)
    return electrons


def _truth_table(kinds, bands, comps, lens, observed, images, ss, call_args):
    """The truth table; ``observed`` holds the per-object draws and measurements."""
    ra, dec, fwhm = observed["ra"], observed["dec"], observed["fwhm"]
    noise_sigma, source_flux = observed["noise_sigma"], observed["source_flux"]
    magnification = observed["magnification"]
    n = kinds.size
    is_lens = kinds == "lens"
    # Total astrophysical flux of each object (not of its field neighbours): lensed
    # sources count magnified.
    weight = (comps["neighbor"] == 0).astype(np.float64)
    lensed = comps["kind"] == sc.LENSED
    weight[lensed] *= magnification[comps["obj"][lensed]]
    total = np.zeros((n, len(bands)))
    np.add.at(total, comps["obj"], comps["flux"] * weight[:, None])
    entropy = ss.entropy
    table = QTable()
    table["object_id"] = np.array([f"sim{entropy % 100000:05d}-{i:07d}" for i in range(n)])
    table["ra"] = ra * u.deg
    table["dec"] = dec * u.deg
    table["kind"] = kinds
    table["is_lens"] = is_lens
    table["is_anomaly"] = np.isin(kinds, ANOMALY_KINDS)
    table["has_nan"] = np.isnan(images).any(axis=(1, 2, 3))
    table["theta_e"] = lens["theta_e"] * u.arcsec
    table["lens_q"] = lens["q"]
    table["lens_pa"] = np.rad2deg(lens["phi"]) % 180.0 * u.deg
    table["shear"] = np.hypot(lens["gamma1"], lens["gamma2"])
    table["source_x"] = lens["source_x"] * u.arcsec
    table["source_y"] = lens["source_y"] * u.arcsec
    table["source_mag"] = flux_to_mag(source_flux) * u.mag
    table["magnification"] = magnification
    table["arc_snr"] = observed["arc_snr"]
    table["mag"] = flux_to_mag(total) * u.mag
    table["psf_fwhm"] = fwhm * u.arcsec
    table["noise_sigma"] = noise_sigma * u.nmgy
    table["n_exposures"] = observed["n_exposures"]
    table["noise_correlation"] = observed["noise_correlation"]
    table["offset_x"] = observed["centre"][0] * u.arcsec
    table["offset_y"] = observed["centre"][1] * u.arcsec
    table["n_neighbors"] = observed["n_neighbors"]
    table["source_knots"] = observed["source_knots"]
    arts = observed["artefacts"]
    table["artefact_bands"] = np.array([arts[i]["bands"] if i in arts else "" for i in range(n)])
    table["artefact_shape"] = np.array([arts[i]["shape"] if i in arts else "" for i in range(n)])
    table.meta.update(provenance("astrounsup.simulate.simulate_lens_survey", seed=str(entropy)))
    table.meta.update(
        {
            "bands": list(bands),
            "pixel_scale_arcsec": call_args["pixel_scale"],
            "flux_unit": "nmgy",
            "psf_model": f"Moffat beta={_PSF_BETA}",
            "zeropoint_ab": {b: BANDS[b].zeropoint for b in bands},
            "gain_e_per_adu": {b: BANDS[b].gain for b in bands},
            "read_noise_e": {b: BANDS[b].read_noise for b in bands},
            "median_sky_mag_arcsec2": {b: BANDS[b].sky_mag for b in bands},
            **{k: v for k, v in call_args.items() if k != "pixel_scale"},
        }
    )
    return table
