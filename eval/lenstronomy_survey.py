"""An evaluation-only survey from a simulator that is not ours: lenstronomy, LSST-like.

    python eval/lenstronomy_survey.py --n 2000 --out DIR [--lens-fraction 0.5] [--seed 0]

Every quality evaluation runs on this survey beside the built-in one, to check that a
method chosen on our own simulator holds on data it was not tuned on. Nothing here is
shared with ``astrounsup.simulate``: the lensing (SIE + external shear), the light profiles
(elliptical Sérsic, Gaussian knots) and the noise (Poisson and background through the
camera's gain, read noise and sky) are lenstronomy's (Birrer & Amara 2018; install it with
``pip install -c constraints.txt -e ".[eval]"``), the observing configuration is
lenstronomy's LSST one (0.2 arcsec pixels, a Gaussian PSF, its zeropoints, sky and
exposures, a 1-year coadd: another survey's pixel scale, PSF and depth), and the populations
and artefacts are drawn here with their own distributions:

* lenses: SIE + shear (Einstein radii 0.7-2.0 arcsec) with a red de Vaucouleurs-like lens
  galaxy and a blue Sérsic source (r 22.5-25.5) with 0-4 Gaussian star-forming knots;
* non-lenses: ellipticals (the lens galaxies without a source), spirals with blue clumps
  in their discs, edge-on discs, galaxy pairs and stars;
* anomalies: satellite trails, cosmic-ray hits, ghosts (filled soft discs with a hole),
  ring galaxies and saturated stars with a bleed streak;
* every cutout has field galaxies and stars and its object a few pixels off-centre.

Images are in nanomaggies (the counts per second converted with the zeropoint), so the
library reads them as it reads any survey.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.table import QTable
from scipy.signal import fftconvolve

from astrounsup.simulate import SimulatedSurvey

BANDS = ("g", "r", "i")
PIXEL_SCALE = 0.2  # LSST
NON_LENS = {"elliptical": 0.35, "spiral": 0.25, "edge_on": 0.10, "pair": 0.15, "star": 0.15}
ANOMALIES = ("satellite_trail", "cosmic_ray", "ghost", "ring_galaxy", "bleed_trail")
# Colours as magnitude offsets from r (g, r, i): their own templates, not astrounsup's.
RED, BLUE, DISC = (1.25, 0.0, -0.45), (0.25, 0.0, -0.15), (0.6, 0.0, -0.3)
SATURATION = 6.0e4  # electrons in one exposure's pixel


def _require_lenstronomy():
    try:
        import lenstronomy  # noqa: F401
    except ImportError:
        msg = 'this evaluation needs lenstronomy: pip install -c constraints.txt -e ".[eval]"'
        raise SystemExit(msg) from None


class _Camera:
    """lenstronomy's LSST configuration per band, with a seeing of the cutout's own."""

    def __init__(self, size, coadd_years):
        from lenstronomy.SimulationAPI.ObservationConfig.LSST import LSST
        from lenstronomy.SimulationAPI.sim_api import SimAPI

        self.size = size
        model = {
            "lens_model_list": ["SIE", "SHEAR"],
            "lens_light_model_list": ["SERSIC_ELLIPSE"],
            "source_light_model_list": ["SERSIC_ELLIPSE"],
        }
        self.bands = {}
        for b in BANDS:
            kw = LSST(band=b, coadd_years=coadd_years).kwargs_single_band()
            sim = SimAPI(num_pix=size, kwargs_single_band=kw, kwargs_model=model)
            self.bands[b] = (kw, sim)
        self.sim = self.bands["r"][1]
        self.image = self.sim.image_model_class({"supersampling_factor": 2})

    def cps(self, band, mag):
        """Counts per second of a source of AB magnitude ``mag`` in ``band``."""
        return self.bands[band][1].magnitude2cps(mag)

    def to_nmgy(self, band):
        """Multiply counts per second by this to get nanomaggies."""
        zp = self.bands[band][0]["magnitude_zero_point"]
        return 10 ** (-0.4 * (zp - 22.5))

    def psf(self, fwhm):
        from lenstronomy.Util.kernel_util import kernel_gaussian

        n = int(np.ceil(3 * fwhm / PIXEL_SCALE)) * 2 + 1
        return kernel_gaussian(n, PIXEL_SCALE, fwhm)

    def noise(self, band, model_cps, seed):
        return self.bands[band][1].noise_for_model(model_cps, seed=int(seed))

    def background_sigma(self, band):
        return self.bands[band][1].background_noise


def _ellipticity(rng, q_range):
    q = rng.uniform(*q_range)
    phi = rng.uniform(0, np.pi)
    e = (1 - q) / (1 + q)
    return e * np.cos(2 * phi), e * np.sin(2 * phi)


class _Scene:
    """Unconvolved images of one cutout's components, each with per-band magnitudes."""

    def __init__(self, camera):
        self.camera = camera
        self.parts = []  # (unconvolved r-band image in cps, colour offsets g r i, is_arc)
        self.points = []  # (x, y, r mag, colour)

    def galaxy(self, rng, mag_r, colour, *, x, y, r_e, n, q_range):
        e1, e2 = _ellipticity(rng, q_range)
        kw = {"magnitude": float(mag_r), "R_sersic": float(r_e), "n_sersic": float(n),
              "e1": e1, "e2": e2, "center_x": float(x), "center_y": float(y)}  # fmt: skip
        kl, _, _ = self.camera.sim.magnitude2amplitude([kw], None, None)
        img = self.camera.image.lens_surface_brightness(kl, unconvolved=True)
        self.parts.append((img, np.asarray(colour), False))
        return e1, e2

    def gaussian_light(self, images, colour, is_arc=False):
        self.parts.append((images, np.asarray(colour), is_arc))

    def point(self, x, y, mag_r, colour):
        self.points.append((x, y, mag_r, np.asarray(colour)))


def _lensed_source(camera, rng, theta_e, lens_x, lens_y, lens_e):
    """A lensed blue Sérsic source with 0-4 Gaussian knots: (image cps, truth)."""
    from lenstronomy.ImSim.image_model import ImageModel
    from lenstronomy.LensModel.lens_model import LensModel
    from lenstronomy.LightModel.light_model import LightModel

    n_knots = int(rng.integers(0, 5))
    beta = 0.9 * theta_e * np.sqrt(rng.uniform())
    ang = rng.uniform(0, 2 * np.pi)
    sx, sy = lens_x + beta * np.cos(ang), lens_y + beta * np.sin(ang)
    mag = rng.uniform(22.5, 25.5)
    knot_share = rng.uniform(0.1, 0.4) if n_knots else 0.0
    e1, e2 = _ellipticity(rng, (0.4, 1.0))
    r_e = rng.uniform(0.1, 0.4)
    kw_main = {"magnitude": mag - 2.5 * np.log10(1 - knot_share), "R_sersic": r_e,
               "n_sersic": rng.uniform(0.5, 2.0), "e1": e1, "e2": e2,
               "center_x": sx, "center_y": sy}  # fmt: skip
    profiles, kws = ["SERSIC_ELLIPSE"], [kw_main]
    if n_knots:
        split = rng.dirichlet(np.ones(n_knots)) * knot_share
        for s in split:
            profiles.append("GAUSSIAN")
            kws.append(
                {
                    "magnitude": mag - 2.5 * np.log10(s),
                    "sigma": rng.uniform(0.03, 0.08),
                    "center_x": sx + rng.normal(0, r_e),
                    "center_y": sy + rng.normal(0, r_e),
                }
            )
    from lenstronomy.SimulationAPI.sim_api import SimAPI

    kw_band = camera.bands["r"][0]
    sim = SimAPI(camera.size, kw_band, {"lens_model_list": ["SIE", "SHEAR"],
                                        "source_light_model_list": profiles})  # fmt: skip
    _, kw_src, _ = sim.magnitude2amplitude(None, kws, None)
    q_e1, q_e2 = lens_e[0] + rng.normal(0, 0.05), lens_e[1] + rng.normal(0, 0.05)
    gamma = np.abs(rng.normal(0, 0.03))
    phi_g = rng.uniform(0, np.pi)
    kw_lens = [
        {"theta_E": theta_e, "e1": q_e1, "e2": q_e2, "center_x": lens_x, "center_y": lens_y},
        {"gamma1": gamma * np.cos(2 * phi_g), "gamma2": gamma * np.sin(2 * phi_g),
         "ra_0": lens_x, "dec_0": lens_y},
    ]  # fmt: skip
    model = ImageModel(
        data_class=sim.data_class, psf_class=sim.psf_class,
        lens_model_class=LensModel(["SIE", "SHEAR"]),
        source_model_class=LightModel(profiles),
        kwargs_numerics={"supersampling_factor": 3},
    )  # fmt: skip
    img = model.source_surface_brightness(kw_src, kw_lens, unconvolved=True)
    unlensed = 10 ** (-0.4 * (mag - kw_band["magnitude_zero_point"]))
    truth = {"theta_e": theta_e, "source_mag": mag, "source_knots": n_knots,
             "magnification": float(img.sum() / unlensed)}  # fmt: skip
    return img, truth


def _ring_image(rng, size, x0, y0):
    """A knotty ring galaxy's unconvolved light of unit total, their own form."""
    c = (np.arange(size) - (size - 1) / 2) * PIXEL_SCALE
    xx, yy = np.meshgrid(c - x0, c - y0)
    q, phi = rng.uniform(0.6, 1.0), rng.uniform(0, np.pi)
    xr = np.cos(phi) * xx + np.sin(phi) * yy
    yr = (-np.sin(phi) * xx + np.cos(phi) * yy) / q
    r, az = np.hypot(xr, yr), np.arctan2(yr, xr)
    radius, width = rng.uniform(1.2, 3.5), rng.uniform(0.2, 0.5)
    ring = np.exp(-0.5 * ((r - radius) / width) ** 2)
    ring *= 1 + rng.uniform(0.2, 0.8) * np.cos(rng.integers(2, 7) * az + rng.uniform(0, 6.3))
    return ring / ring.sum()


def _trail(rng, size):
    c = (np.arange(size) - (size - 1) / 2) * PIXEL_SCALE
    xx, yy = np.meshgrid(c, c)
    ang = rng.uniform(0, np.pi)
    d = -np.sin(ang) * xx + np.cos(ang) * yy - rng.uniform(-4, 4)
    return np.exp(-0.5 * (d / (rng.uniform(0.7, 2.5) / 2.355)) ** 2)


def _ghost(rng, size):
    c = (np.arange(size) - (size - 1) / 2) * PIXEL_SCALE
    xx, yy = np.meshgrid(c - rng.uniform(-8, 8), c - rng.uniform(-8, 8))
    r = np.hypot(xx, yy)
    outer = rng.uniform(3.0, 12.0)
    inner = outer * rng.uniform(0.3, 0.7)
    return 1 / (1 + np.exp((r - outer) / 0.4)) * 1 / (1 + np.exp(-(r - inner) / 0.4))


def simulate_lenstronomy_survey(
    n, *, lens_fraction=0.5, anomaly_fraction=0.01, seed=0, size=64, coadd_years=1,
    progress=True,
):  # fmt: skip
    """``n`` cutouts of the LSST-like lenstronomy survey described in the module notes.

    Returns
    -------
    astrounsup.simulate.SimulatedSurvey
        Images ``(n, 3, size, size)`` in nanomaggies (g, r, i) and a truth table with
        ``object_id``, ``ra``, ``dec``, ``kind``, ``is_lens``, ``is_anomaly``, ``theta_e``,
        ``source_mag``, ``source_knots``, ``magnification``, ``arc_snr``, ``psf_fwhm``,
        ``noise_sigma`` and ``n_neighbors``.
    """
    _require_lenstronomy()
    camera = _Camera(size, coadd_years)
    rng = np.random.default_rng(seed)
    n_lens = round(n * lens_fraction)
    n_anom = min(round(n * anomaly_fraction), n - n_lens)
    other = n - n_lens - n_anom
    kinds = ["lens"] * n_lens + list(rng.choice(ANOMALIES, n_anom))
    kinds += list(rng.choice(list(NON_LENS), other, p=list(NON_LENS.values())))
    kinds = np.array(kinds, dtype="U16")
    rng.shuffle(kinds)
    nb = len(BANDS)
    images = np.empty((n, nb, size, size), np.float32)
    cols = {k: np.full(n, np.nan) for k in ("theta_e", "source_mag", "magnification", "arc_snr")}
    knots = np.zeros(n, int)
    neighbors = np.zeros(n, int)
    fwhm_all = np.empty((n, nb))
    sigma_all = np.empty((n, nb))
    t0 = time.perf_counter()
    for i, kind in enumerate(kinds):
        if progress and i and i % 500 == 0:
            print(f"  {i}/{n} cutouts, {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        scene = _Scene(camera)
        r_off = 3 * PIXEL_SCALE * np.sqrt(rng.uniform())
        a_off = rng.uniform(0, 2 * np.pi)
        x0, y0 = r_off * np.cos(a_off), r_off * np.sin(a_off)
        arc = None
        if kind in ("lens", "elliptical", "satellite_trail", "cosmic_ray", "ghost"):
            theta_e = rng.uniform(0.7, 2.0)
            mag = 20.5 - 1.5 * (theta_e - 1.0) + rng.normal(0, 0.3)
            e = scene.galaxy(rng, mag, RED + rng.normal(0, 0.05, 3), x=x0, y=y0,
                             r_e=theta_e * rng.uniform(0.6, 1.2), n=rng.uniform(3, 5),
                             q_range=(0.6, 1.0))  # fmt: skip
            if kind == "lens":
                arc, truth = _lensed_source(camera, rng, theta_e, x0, y0, e)
                scene.gaussian_light(arc, BLUE + rng.normal(0, 0.08, 3), is_arc=True)
                for key in ("theta_e", "source_mag", "magnification"):
                    cols[key][i] = truth[key]
                knots[i] = truth["source_knots"]
        elif kind in ("spiral", "bleed_trail"):
            mag = rng.uniform(18.0, 21.5)
            r_d = rng.uniform(0.6, 2.0)
            scene.galaxy(rng, mag + 0.2, DISC, x=x0, y=y0, r_e=r_d, n=1.0, q_range=(0.3, 1.0))
            scene.galaxy(rng, mag + 1.5, RED, x=x0, y=y0, r_e=0.3 * r_d, n=3.5,
                         q_range=(0.7, 1.0))  # fmt: skip
            for _ in range(int(rng.integers(2, 6))):  # blue star-forming clumps in the disc
                rad, ang = r_d * rng.uniform(0.5, 1.8), rng.uniform(0, 2 * np.pi)
                scene.galaxy(rng, mag + rng.uniform(2.5, 4.0), BLUE, x=x0 + rad * np.cos(ang),
                             y=y0 + rad * np.sin(ang), r_e=rng.uniform(0.08, 0.2), n=0.7,
                             q_range=(0.5, 1.0))  # fmt: skip
        elif kind == "edge_on":
            scene.galaxy(rng, rng.uniform(18.5, 21.5), DISC, x=x0, y=y0,
                         r_e=rng.uniform(0.8, 2.2), n=1.0, q_range=(0.1, 0.25))  # fmt: skip
        elif kind == "pair":
            for dx, dy in ((0, 0), tuple(rng.uniform(1.0, 4.0) * np.array(
                    [np.cos(a := rng.uniform(0, 6.3)), np.sin(a)]))):  # fmt: skip
                red = rng.uniform() < 0.5
                scene.galaxy(rng, rng.uniform(19.0, 22.0), RED if red else DISC, x=x0 + dx,
                             y=y0 + dy, r_e=rng.uniform(0.3, 1.2), n=4.0 if red else 1.0,
                             q_range=(0.4, 1.0))  # fmt: skip
        elif kind == "star":
            scene.point(x0, y0, rng.uniform(17.0, 22.5), (rng.uniform(0.3, 1.4), 0.0,
                        -rng.uniform(0.1, 0.6)))  # fmt: skip
        if kind == "bleed_trail":
            scene.point(rng.uniform(-4, 4), rng.uniform(-4, 4), rng.uniform(12.0, 14.0),
                        (0.5, 0.0, -0.2))  # fmt: skip
        if kind == "ring_galaxy":
            ring_mag = rng.uniform(19.0, 21.0)
            unit = _ring_image(rng, size, x0, y0)
            scene.gaussian_light(unit * camera.cps("r", ring_mag), BLUE)
            scene.galaxy(rng, ring_mag + rng.uniform(0.5, 2.0), RED, x=x0, y=y0,
                         r_e=rng.uniform(0.3, 0.7), n=3.0, q_range=(0.7, 1.0))  # fmt: skip
        # Field galaxies and stars, at the same rate in every cutout.
        for _ in range(rng.poisson(1.0)):
            fx, fy = rng.uniform(-6.4, 6.4, 2)
            if np.hypot(fx - x0, fy - y0) < 2.0:
                continue
            neighbors[i] += 1
            scene.galaxy(rng, rng.uniform(20.0, 24.0), RED if rng.uniform() < 0.3 else DISC,
                         x=fx, y=fy, r_e=rng.uniform(0.15, 0.6), n=rng.uniform(1, 4),
                         q_range=(0.3, 1.0))  # fmt: skip
        for _ in range(rng.poisson(0.2)):
            fx, fy = rng.uniform(-6.4, 6.4, 2)
            neighbors[i] += 1
            scene.point(fx, fy, rng.uniform(18.0, 23.0), (0.8, 0.0, -0.3))
        seeing = np.exp(rng.normal(0.0, 0.15))
        # One trail or ghost per cutout, seen in every band with its own brightness.
        light = _trail(rng, size) if kind == "satellite_trail" else None
        light = _ghost(rng, size) if kind == "ghost" else light
        for j, b in enumerate(BANDS):
            kw = camera.bands[b][0]
            fwhm = kw["seeing"] * seeing * np.exp(rng.normal(0.0, 0.05))
            kernel = camera.psf(fwhm)
            model = np.zeros((size, size))
            arc_model = None
            for img, colour, is_arc in scene.parts:
                scale = 10 ** (-0.4 * colour[j]) * camera.cps(b, 0.0) / camera.cps("r", 0.0)
                conv = fftconvolve(img * scale, kernel, mode="same")
                model += conv
                if is_arc:
                    arc_model = conv
            for px, py, pmag, colour in scene.points:
                col = (px / PIXEL_SCALE) + (size - 1) / 2
                row = (py / PIXEL_SCALE) + (size - 1) / 2
                cc, rr = np.meshgrid(np.arange(size), np.arange(size))
                s = fwhm / 2.355 / PIXEL_SCALE
                psf = np.exp(-0.5 * ((cc - col) ** 2 + (rr - row) ** 2) / s**2)
                model += psf / (2 * np.pi * s**2) * camera.cps(b, pmag + colour[j])
            if kind == "satellite_trail":
                model += light * rng.uniform(3, 30) * camera.background_sigma(b)
            if kind == "ghost":
                model += light * rng.uniform(0.5, 2.5) * camera.background_sigma(b)
            noisy = model + camera.noise(b, model, rng.integers(2**31))
            if kind == "bleed_trail":
                # Saturated in one exposure: clip, and bleed the charge along the columns.
                level = SATURATION / kw["exposure_time"]
                over = noisy > level
                if over.any():
                    excess = (noisy[over] - level).sum()
                    cols_hit = np.unique(np.nonzero(over)[1])
                    noisy[over] = level
                    length = int(min(size, 1 + excess / level / max(len(cols_hit), 1)))
                    r0 = int(np.nonzero(over)[0].mean())
                    for c in cols_hit:
                        lo_r, hi_r = max(0, r0 - length // 2), min(size, r0 + length // 2 + 1)
                        noisy[lo_r:hi_r, c] = level
            if kind == "cosmic_ray" and j == 1:
                for _ in range(int(rng.integers(1, 6))):
                    r, c = rng.integers(0, size, 2)
                    steps = int(rng.integers(1, 10))
                    ang = rng.uniform(0, 2 * np.pi)
                    for t in range(steps):
                        rr_, cc_ = int(r + t * np.sin(ang)), int(c + t * np.cos(ang))
                        if 0 <= rr_ < size and 0 <= cc_ < size:
                            noisy[rr_, cc_] += rng.uniform(30, 300) * camera.background_sigma(b)
            images[i, j] = noisy * camera.to_nmgy(b)
            fwhm_all[i, j] = fwhm
            sigma_all[i, j] = camera.background_sigma(b) * camera.to_nmgy(b)
            if arc_model is not None:
                snr2 = ((arc_model / camera.background_sigma(b)) ** 2).sum()
                cols["arc_snr"][i] = np.sqrt(np.nan_to_num(cols["arc_snr"][i]) ** 2 + snr2)
    table = QTable()
    table["object_id"] = [f"lt{seed:03d}-{i:07d}" for i in range(n)]
    table["ra"] = (30.0 + rng.uniform(-1, 1, n)) * u.deg
    table["dec"] = (-30.0 + rng.uniform(-1, 1, n)) * u.deg
    table["kind"] = kinds
    table["is_lens"] = kinds == "lens"
    table["is_anomaly"] = np.isin(kinds, ANOMALIES)
    table["theta_e"] = cols["theta_e"] * u.arcsec
    table["source_mag"] = cols["source_mag"] * u.mag
    table["source_knots"] = knots
    table["magnification"] = cols["magnification"]
    table["arc_snr"] = cols["arc_snr"]
    table["psf_fwhm"] = fwhm_all * u.arcsec
    table["noise_sigma"] = sigma_all * u.nmgy
    table["n_neighbors"] = neighbors
    table.meta.update({"simulator": "lenstronomy (eval/lenstronomy_survey.py)", "seed": seed,
                       "bands": list(BANDS), "pixel_scale_arcsec": PIXEL_SCALE,
                       "coadd_years": coadd_years, "lens_fraction": lens_fraction,
                       "anomaly_fraction": anomaly_fraction})  # fmt: skip
    return SimulatedSurvey(images=images, table=table, bands=BANDS, pixel_scale=PIXEL_SCALE)


def main(argv=None):
    parser = argparse.ArgumentParser(description="the lenstronomy LSST-like survey, on disk")
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--lens-fraction", type=float, default=0.5)
    parser.add_argument("--anomaly-fraction", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from astrounsup.io import write_store

    t0 = time.perf_counter()
    s = simulate_lenstronomy_survey(
        args.n, lens_fraction=args.lens_fraction, anomaly_fraction=args.anomaly_fraction,
        seed=args.seed,
    )  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    write_store(args.out / "cutouts.h5", s.images, s.table, bands=s.bands,
                pixel_scale=s.pixel_scale)  # fmt: skip
    print(f"{args.n} cutouts in {time.perf_counter() - t0:.0f} s -> {args.out / 'cutouts.h5'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
