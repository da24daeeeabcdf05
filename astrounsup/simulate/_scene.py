"""Draws of the astrophysical scene in each cutout, as flat arrays of components.

Every object is made of components (Sérsic profiles, lensed Sérsic sources, knotty rings
and point sources) held as a structure of arrays, so the renderer can evaluate all
components of a batch of objects at once. Magnitudes are AB; colours are offsets from the
``r`` magnitude per band, from simple templates of each population.
"""

from __future__ import annotations

import numpy as np

from astrounsup.instrument import mag_to_flux

SERSIC, LENSED, RING, POINT = 0, 1, 2, 3

# Magnitude offsets from r (g, r, i, z, Y) and their per-object scatter.
_COLOURS = {
    # Luminous red galaxy at z ~ 0.3-0.5.
    "red": ((1.55, 0.0, -0.50, -0.85, -1.05), 0.08),
    # Star-forming source at z ~ 1-2: nearly flat in f_nu.
    "blue": ((0.20, 0.0, -0.15, -0.25, -0.30), 0.10),
    # Low-redshift star-forming disc.
    "disc": ((0.55, 0.0, -0.30, -0.50, -0.60), 0.08),
    # Bulge of a low-redshift galaxy.
    "bulge": ((1.15, 0.0, -0.40, -0.70, -0.85), 0.06),
    # Sunlight reflected by a satellite or scattered in the optics.
    "solar": ((0.44, 0.0, -0.11, -0.14, -0.15), 0.03),
}
_BAND_INDEX = {"g": 0, "r": 1, "i": 2, "z": 3, "Y": 4}

# Stellar locus in (g-r, r-i, i-z, z-Y), from A to mid-M dwarfs.
_LOCUS = np.array(
    [
        (0.00, -0.05, -0.05, -0.02),
        (0.30, 0.10, 0.02, 0.00),
        (0.60, 0.20, 0.08, 0.03),
        (1.00, 0.35, 0.17, 0.06),
        (1.30, 0.60, 0.30, 0.12),
        (1.42, 1.00, 0.50, 0.20),
        (1.48, 1.60, 0.80, 0.32),
    ]
)


def _offsets(bands):
    return np.array([_BAND_INDEX[b] for b in bands])


def colour_fluxes(rng, mag_r, template, bands):
    """Fluxes (m, B) in nmgy for r magnitudes ``mag_r`` (m,) and a colour template."""
    offs, scatter = _COLOURS[template]
    offs = np.asarray(offs)[_offsets(bands)]
    mags = mag_r[:, None] + offs[None, :] + rng.normal(0.0, scatter, (mag_r.size, len(bands)))
    return mag_to_flux(mags)


def star_fluxes(rng, mag_r, bands):
    """Fluxes (m, B) of stars on the stellar locus, nmgy."""
    t = rng.uniform(0.0, 1.0, mag_r.size) ** 0.7 * (len(_LOCUS) - 1)
    lo = np.floor(t).astype(int).clip(0, len(_LOCUS) - 2)
    w = (t - lo)[:, None]
    c = _LOCUS[lo] * (1 - w) + _LOCUS[lo + 1] * w  # (m, 4) g-r, r-i, i-z, z-Y
    c = c + rng.normal(0.0, 0.03, c.shape)
    # Magnitudes in g, r, i, z, Y from r and the colours.
    m_all = np.stack(
        [
            mag_r + c[:, 0],
            mag_r,
            mag_r - c[:, 1],
            mag_r - c[:, 1] - c[:, 2],
            mag_r - c[:, 1] - c[:, 2] - c[:, 3],
        ],
        axis=1,
    )
    return mag_to_flux(m_all[:, _offsets(bands)])


class Components:
    """Growing structure of arrays of components; ``finish`` sorts them by object."""

    _fields = (
        "obj",
        "kind",
        "x0",
        "y0",
        "r_e",
        "n",
        "q",
        "phi",
        "width",
        "knots",
        "knot_amp",
        "knot_phase",
        "neighbor",
    )

    def __init__(self, n_bands):
        self.n_bands = n_bands
        self._parts = []

    def add(self, obj, kind, flux, **params):
        obj = np.asarray(obj, dtype=np.int64)
        m = obj.size
        if m == 0:
            return
        row = {"obj": obj, "kind": np.full(m, kind, dtype=np.int8)}
        for f in self._fields[2:]:
            row[f] = np.broadcast_to(np.asarray(params.get(f, 0.0), np.float64), (m,)).copy()
        row["flux"] = np.asarray(flux, np.float64).reshape(m, self.n_bands)
        self._parts.append(row)

    def finish(self):
        if not self._parts:
            empty = {f: np.empty(0) for f in self._fields}
            empty["flux"] = np.empty((0, self.n_bands))
            return empty
        out = {k: np.concatenate([p[k] for p in self._parts]) for k in self._parts[0]}
        order = np.argsort(out["obj"], kind="stable")
        return {k: v[order] for k, v in out.items()}


def draw_red_galaxies(rng, m):
    """Lens-like luminous red galaxies: (theta_e, r mag, r_e, n, q, phi) arrays of size m.

    The same population serves as lens galaxies and as the unlensed red galaxies (the
    hardest negatives), so the two differ only by the presence of a lensed source. The
    Einstein radius their mass would have sets their brightness and size, as it does for
    real lenses (theta_e ~ sigma_v**2).
    """
    theta_e = rng.uniform(0.8, 2.5, m)
    mag_r = 19.6 - 1.2 * (theta_e - 0.8) / 1.7 + rng.normal(0.0, 0.35, m)
    r_e = np.clip(theta_e * rng.uniform(0.7, 1.4, m), 0.6, 4.0)
    n = rng.uniform(3.0, 5.0, m)
    q = rng.uniform(0.6, 1.0, m)
    phi = rng.uniform(0.0, np.pi, m)
    return theta_e, mag_r, r_e, n, q, phi


def add_red_galaxies(comps, rng, objs, bands, x0, y0):
    """Add red galaxies to ``objs``; returns their drawn parameters."""
    theta_e, mag_r, r_e, n, q, phi = draw_red_galaxies(rng, objs.size)
    flux = colour_fluxes(rng, mag_r, "red", bands)
    comps.add(objs, SERSIC, flux, x0=x0, y0=y0, r_e=r_e, n=n, q=q, phi=phi)
    return theta_e, r_e, q, phi


def add_disc_galaxies(comps, rng, objs, bands, x0, y0, mag_r=None):
    """Add disc galaxies with bulges (bulge-to-total 0-0.5)."""
    m = objs.size
    if mag_r is None:
        mag_r = rng.uniform(17.5, 21.5, m)
    bt = rng.uniform(0.0, 0.5, m)
    r_d = np.clip(np.exp(rng.normal(np.log(1.2), 0.35, m)), 0.4, 4.0)
    cos_i = rng.uniform(0.0, 1.0, m)
    q0 = 0.15  # intrinsic thickness of a disc
    q_d = np.sqrt(cos_i**2 * (1 - q0**2) + q0**2)
    phi = rng.uniform(0.0, np.pi, m)
    f_tot = mag_to_flux(mag_r)
    disc = colour_fluxes(rng, np.full(m, 22.5), "disc", bands) * (f_tot * (1 - bt))[:, None]
    bulge = colour_fluxes(rng, np.full(m, 22.5), "bulge", bands) * (f_tot * bt)[:, None]
    comps.add(objs, SERSIC, disc, x0=x0, y0=y0, r_e=r_d, n=1.0, q=q_d, phi=phi)
    keep = bt > 0.02
    comps.add(
        objs[keep],
        SERSIC,
        bulge[keep],
        x0=np.broadcast_to(x0, m)[keep],
        y0=np.broadcast_to(y0, m)[keep],
        r_e=(r_d * rng.uniform(0.15, 0.35, m))[keep],
        n=rng.uniform(2.5, 4.5, m)[keep],
        q=rng.uniform(0.7, 1.0, m)[keep],
        phi=phi[keep],
    )


def draw_lenses(rng, m):
    """SIE + shear lens and source parameters for m lenses, as a dict of arrays."""
    theta_e, mag_r, r_e, n, q, phi = draw_red_galaxies(rng, m)
    q_mass = np.clip(q + rng.normal(0.0, 0.08, m), 0.45, 1.0)
    phi_mass = phi + rng.normal(0.0, 0.15, m)
    gamma = np.clip(np.abs(rng.normal(0.0, 0.04, m)), 0.0, 0.15)
    phi_gamma = rng.uniform(0.0, np.pi, m)
    # Sources uniform in area inside 0.85 theta_e: rings near the centre, arcs and
    # doubles further out.
    beta = 0.85 * theta_e * np.sqrt(rng.uniform(0.0, 1.0, m))
    ang = rng.uniform(0.0, 2 * np.pi, m)
    return {
        "theta_e": theta_e,
        "mag_r": mag_r,
        "r_e": r_e,
        "n": n,
        "q": q,
        "phi": phi,
        "q_mass": q_mass,
        "phi_mass": phi_mass,
        "gamma1": gamma * np.cos(2 * phi_gamma),
        "gamma2": gamma * np.sin(2 * phi_gamma),
        "source_x": beta * np.cos(ang),
        "source_y": beta * np.sin(ang),
        "source_mag_r": rng.uniform(20.0, 22.5, m),
        "source_r_e": rng.uniform(0.15, 0.6, m),
        "source_n": rng.uniform(0.5, 1.5, m),
        "source_q": rng.uniform(0.4, 1.0, m),
        "source_phi": rng.uniform(0.0, np.pi, m),
    }
