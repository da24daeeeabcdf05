"""A Gaia-like stellar population for main-sequence studies.

Stars are drawn in five stages: the main sequence, unresolved equal-mass binaries, subgiants,
red giants (including the red clump) and white dwarfs. Luminosity and radius follow textbook
scaling relations, ``Teff`` follows from Stefan-Boltzmann, and Gaia ``G``, ``BP`` and ``RP``
magnitudes from synthetic photometry of a blackbody through smooth approximations of the Gaia
passbands, calibrated so that the Sun has ``M_G = 4.67`` and ``BP - RP = 0.82`` (Casagrande &
VandenBerg 2018). Stars are placed at distances drawn for a uniform space density out to the
distance at which they reach the magnitude limit, reddened with ``A_V`` growing with
distance (``A_G, A_BP, A_RP = 0.789, 1.002, 0.589 A_V``; Wang & Chen 2019), and observed with
Gaia-EDR3-like parallax and photometric errors.

Blackbody colours are bluer than real M dwarfs' (which molecular bands redden in BP), so the
lower main sequence is compressed in ``BP - RP``; its order in temperature is kept.
"""

from __future__ import annotations

import astropy.units as u
import numpy as np
from astropy.table import QTable

from astrounsup._provenance import provenance
from astrounsup.simulate._random import seed_sequence

__all__ = ["STAGES", "gaia_absolute_magnitudes", "simulate_stars"]

#: Evolutionary stages and their shares of the population.
STAGES = {
    "main_sequence": 0.78,
    "binary": 0.10,
    "subgiant": 0.04,
    "red_giant": 0.05,
    "white_dwarf": 0.03,
}

#: Where each stage lies relative to the single-star main sequence in the
#: colour-magnitude diagram: the truth a main-sequence membership flag is scored against.
STAGE_PLACE = {
    "main_sequence": "main_sequence",
    "binary": "above",
    "subgiant": "above",
    "red_giant": "above",
    "white_dwarf": "below",
}

_T_SUN = 5772.0
_M_BOL_SUN = 4.74
_SUN_GAIA = {"G": 4.67, "BP": 5.00, "RP": 4.18}
_A_OVER_AV = {"G": 0.789, "BP": 1.002, "RP": 0.589}
_WAVE = np.linspace(300.0, 1100.0, 801)  # nm, for synthetic photometry


def _passband(lo, hi, edge):
    """Smooth top-hat response between ``lo`` and ``hi`` nm with logistic edges."""
    return 1.0 / (1.0 + np.exp(-(_WAVE - lo) / edge)) / (1.0 + np.exp((_WAVE - hi) / edge))


# Rough Gaia responses: G is the wide white-light band, BP and RP split it near 650 nm.
_PASSBANDS = {
    "G": _passband(340.0, 1000.0, 25.0),
    "BP": _passband(340.0, 660.0, 15.0),
    "RP": _passband(640.0, 1000.0, 15.0),
}


def _planck_photons(teff):
    """Photon-counting blackbody spectrum, up to a constant: (n, wave)."""
    hc_over_k = 1.438777e7  # nm K
    x = hc_over_k / (_WAVE[None, :] * np.asarray(teff, dtype=np.float64)[:, None])
    # B_lambda * lambda / (h c) ~ lambda^-4 / (exp(x) - 1)
    return _WAVE[None, :] ** -4 / np.expm1(x)


def _band_fraction(teff, band):
    """Share of the bolometric flux (sigma T^4) counted in ``band``, up to a constant."""
    teff = np.asarray(teff, dtype=np.float64)
    counts = np.trapezoid(_planck_photons(teff) * _PASSBANDS[band][None, :], _WAVE, axis=1)
    return counts / teff**4


def gaia_absolute_magnitudes(teff, luminosity):
    """Absolute Gaia magnitudes of blackbody stars.

    Parameters
    ----------
    teff : array_like
        Effective temperature, K.
    luminosity : array_like
        Luminosity, solar units.

    Returns
    -------
    dict of str to numpy.ndarray
        ``{"G": M_G, "BP": M_BP, "RP": M_RP}``.

    Examples
    --------
    >>> m = gaia_absolute_magnitudes([5772.0], [1.0])
    >>> round(float(m["G"][0]), 2), round(float(m["BP"][0] - m["RP"][0]), 2)
    (4.67, 0.82)
    """
    teff = np.atleast_1d(np.asarray(teff, dtype=np.float64))
    m_bol = _M_BOL_SUN - 2.5 * np.log10(np.asarray(luminosity, dtype=np.float64))
    out = {}
    for band, m_sun in _SUN_GAIA.items():
        bc = -2.5 * np.log10(_band_fraction(teff, band) / _band_fraction([_T_SUN], band))
        out[band] = m_bol + bc + (m_sun - _M_BOL_SUN)
    return out


def _kroupa_masses(rng, n, lo=0.15, hi=1.6):
    """Masses from a Kroupa (2001) IMF between ``lo`` and ``hi`` solar masses."""
    # Inverse-transform sampling on a fine grid of the broken power law.
    grid = np.geomspace(lo, hi, 4000)
    pdf = np.where(grid < 0.5, (grid / 0.5) ** -1.3, (grid / 0.5) ** -2.3)
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (pdf[1:] + pdf[:-1]) * np.diff(grid))])
    return np.interp(rng.uniform(0.0, cdf[-1], n), cdf, grid)


def _main_sequence(mass):
    """Zero-age luminosity (Lsun) and radius (Rsun) of main-sequence stars."""
    lum = np.where(mass < 0.43, 0.23 * mass**2.3, np.where(mass < 2.0, mass**4, 1.4 * mass**3.5))
    radius = np.where(mass < 1.0, mass**0.8, mass**0.57)
    return lum, radius


def _draw_stages(rng, n):
    stages = np.array(list(STAGES))
    counts = np.floor(np.array(list(STAGES.values())) * n).astype(int)
    counts[: n - counts.sum()] += 1
    out = np.repeat(stages, counts)
    rng.shuffle(out)
    return out


def simulate_stars(n, *, g_limit=20.0, max_distance=2000.0, spectra=False, seed=None):
    """Simulate a Gaia-like table of stars with their truth.

    Parameters
    ----------
    n : int
        Number of stars, > 0.
    g_limit : float, optional
        Magnitude limit: each star is placed no further than where its unreddened ``G``
        reaches this value.
    max_distance : float, optional
        Largest distance, pc.
    spectra : bool, optional
        Add a ``spectrum`` column: a low-resolution flux spectrum (W m^-2 nm^-1) on the
        wavelengths in ``table.meta["spectrum_wavelength_nm"]``, reddened and with noise.
    seed : int, numpy.random.SeedSequence or None, optional
        Seed; the same seed gives the same table.

    Returns
    -------
    astropy.table.QTable
        Gaia-named columns (``source_id``, ``ra``, ``dec``, ``parallax``, ``parallax_error``,
        ``parallax_over_error``, ``phot_g_mean_mag``, ``phot_bp_mean_mag``,
        ``phot_rp_mean_mag``, ``bp_rp``, and extinction estimates ``ag_gspphot`` and
        ``ebpminrp_gspphot`` from one A_V estimate with a 30% error, as Gaia DR3's GSP-Phot
        gives them) and the truth (``teff``, ``logg``, ``mass``,
        ``stage``, ``feh``, ``distance``, ``a_v``, ``abs_g_true``, ``bp_rp_true``).

    Raises
    ------
    ValueError
        For ``n <= 0`` or limits that are not positive.

    Examples
    --------
    >>> stars = simulate_stars(500, seed=2)
    >>> sorted(set(stars["stage"].tolist()))
    ['binary', 'main_sequence', 'red_giant', 'subgiant', 'white_dwarf']
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
        msg = f"n must be a positive integer number of stars; got {n!r}"
        raise ValueError(msg)
    if not (isinstance(max_distance, (int, float)) and max_distance > 10):
        msg = f"max_distance must be a number > 10 pc; got {max_distance!r}"
        raise ValueError(msg)
    if not isinstance(g_limit, (int, float)):
        msg = f"g_limit must be a number (Gaia G magnitude); got {g_limit!r}"
        raise ValueError(msg)
    ss = seed_sequence(seed)
    rng = np.random.default_rng(ss)
    stage = _draw_stages(rng, n)
    mass = np.empty(n)
    lum = np.empty(n)
    teff = np.empty(n)
    radius = np.empty(n)
    feh = rng.normal(-0.1, 0.2, n)

    ms = np.isin(stage, ("main_sequence", "binary"))
    mass[ms] = _kroupa_masses(rng, int(ms.sum()))
    lum0, rad0 = _main_sequence(mass[ms])
    # Ageing along the main sequence brightens a star by up to 0.25 mag; metal-poor stars
    # are hotter and brighter at a given mass.
    lum[ms] = lum0 * 10 ** (rng.uniform(0.0, 0.1, ms.sum()) - 0.1 * feh[ms])
    radius[ms] = rad0
    teff[ms] = _T_SUN * (lum0 / rad0**2) ** 0.25 * 10 ** (-0.025 * feh[ms])

    sg = stage == "subgiant"
    mass[sg] = rng.uniform(1.0, 1.6, sg.sum())
    teff[sg] = rng.uniform(5000.0, 6200.0, sg.sum())
    lum[sg] = 10 ** rng.uniform(0.3, 0.9, sg.sum())

    rg = stage == "red_giant"
    k = int(rg.sum())
    mass[rg] = rng.uniform(0.9, 2.0, k)
    clump = rng.uniform(size=k) < 0.35
    log_l = np.where(clump, rng.normal(1.7, 0.05, k), 0.8 + 2.0 * rng.uniform(size=k) ** 2)
    log_t = np.where(
        clump,
        np.log10(rng.normal(4700.0, 80.0, k)),
        np.log10(4900.0) - 0.065 * (log_l - 0.8) + rng.normal(0.0, 0.005, k),
    )
    lum[rg] = 10**log_l
    teff[rg] = 10**log_t

    wd = stage == "white_dwarf"
    k = int(wd.sum())
    mass[wd] = np.clip(rng.normal(0.6, 0.06, k), 0.45, 1.1)
    radius[wd] = 0.0127 * (mass[wd] / 0.6) ** (-1.0 / 3.0)
    teff[wd] = np.exp(rng.uniform(np.log(5000.0), np.log(25000.0), k))
    lum[wd] = radius[wd] ** 2 * (teff[wd] / _T_SUN) ** 4

    giants = sg | rg
    radius[giants] = np.sqrt(lum[giants]) * (_T_SUN / teff[giants]) ** 2
    logg = 4.438 + np.log10(mass) - 2.0 * np.log10(radius)

    # An unresolved equal-mass twin doubles the light at the same colour.
    lum_seen = np.where(stage == "binary", 2.0 * lum, lum)
    absmag = gaia_absolute_magnitudes(teff, lum_seen)

    # Uniform space density out to where each star reaches the magnitude limit.
    d_lim = np.clip(10 ** ((g_limit - absmag["G"] + 5.0) / 5.0), 10.0, max_distance)
    d_min = 5.0
    dist = np.cbrt(rng.uniform(d_min**3, d_lim**3))
    a_v = 0.7e-3 * dist * np.exp(rng.normal(0.0, 0.5, n))

    obs = {}
    for band in ("G", "BP", "RP"):
        obs[band] = absmag[band] + 5.0 * np.log10(dist / 10.0) + _A_OVER_AV[band] * a_v
    sigma_g = 0.0003 + 0.002 * 10 ** (0.4 * (obs["G"] - 19.0))
    phot = {
        "G": obs["G"] + rng.normal(0.0, 1.0, n) * sigma_g,
        "BP": obs["BP"] + rng.normal(0.0, 1.0, n) * 3.0 * sigma_g,
        "RP": obs["RP"] + rng.normal(0.0, 1.0, n) * 2.0 * sigma_g,
    }
    z = 10 ** (0.4 * (np.maximum(obs["G"], 13.0) - 15.0))
    plx_err = np.sqrt(40.0 + 800.0 * z + 30.0 * z**2) * 1e-3  # mas, Gaia EDR3-like
    plx = 1000.0 / dist + rng.normal(0.0, 1.0, n) * plx_err

    table = QTable()
    table["source_id"] = rng.choice(2**62, size=n, replace=False).astype(np.int64)
    table["ra"] = rng.uniform(0.0, 360.0, n) * u.deg
    table["dec"] = np.rad2deg(np.arcsin(rng.uniform(-1.0, 1.0, n))) * u.deg
    table["parallax"] = plx * u.mas
    table["parallax_error"] = plx_err * u.mas
    table["parallax_over_error"] = plx / plx_err
    table["phot_g_mean_mag"] = phot["G"] * u.mag
    table["phot_bp_mean_mag"] = phot["BP"] * u.mag
    table["phot_rp_mean_mag"] = phot["RP"] * u.mag
    table["bp_rp"] = (phot["BP"] - phot["RP"]) * u.mag
    # Gaia DR3 GSP-Phot-like extinction estimates: one estimate of A_V with a 30%
    # (lognormal) error, from which both A_G and E(BP-RP) follow, as GSP-Phot derives both
    # from its one extinction parameter A_0.
    a_v_est = a_v * np.exp(rng.normal(0.0, 0.3, n))
    table["ag_gspphot"] = _A_OVER_AV["G"] * a_v_est * u.mag
    table["ebpminrp_gspphot"] = (_A_OVER_AV["BP"] - _A_OVER_AV["RP"]) * a_v_est * u.mag
    table["teff"] = teff * u.K
    table["logg"] = logg
    table["mass"] = mass * u.M_sun
    table["stage"] = stage
    table["feh"] = feh
    table["distance"] = dist * u.pc
    table["a_v"] = a_v * u.mag
    table["abs_g_true"] = absmag["G"] * u.mag
    table["bp_rp_true"] = (absmag["BP"] - absmag["RP"]) * u.mag
    if spectra:
        wave = np.linspace(330.0, 1050.0, 61)
        table["spectrum"] = _spectra(rng, wave, teff, radius, lum_seen / lum, dist, a_v, obs["G"])
        table.meta["spectrum_wavelength_nm"] = wave.tolist()
    table.meta.update(
        provenance(
            "astrounsup.simulate.simulate_stars",
            seed=str(ss.entropy),
            n=n,
            g_limit=g_limit,
            max_distance_pc=max_distance,
        )
    )
    return table


def _spectra(rng, wave, teff, radius, multiplicity, dist, a_v, g_mag):
    """Reddened blackbody flux densities at Earth with noise, W m^-2 nm^-1, (n, wave)."""
    h, c, k_b = 6.62607015e-34, 2.99792458e8, 1.380649e-23
    lam = wave[None, :] * 1e-9
    b_lam = 2 * h * c**2 / lam**5 / np.expm1(h * c / (lam * k_b * teff[:, None]))  # W/m^2/m/sr
    r_m = radius[:, None] * 6.957e8
    d_m = dist[:, None] * 3.0857e16
    flux = np.pi * b_lam * (r_m / d_m) ** 2 * multiplicity[:, None] * 1e-9
    a_lam = a_v[:, None] * (550.0 / wave[None, :]) ** 1.3
    flux *= 10 ** (-0.4 * a_lam)
    rel_noise = 0.005 * 10 ** (0.2 * (g_mag[:, None] - 15.0))
    return flux * (1.0 + rel_noise * rng.standard_normal(flux.shape)) * u.W / u.m**2 / u.nm
