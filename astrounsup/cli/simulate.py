"""``astrounsup simulate lenses|stars``: the built-in surveys, written to a folder."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from astrounsup.cli._common import HelpFormatter, comma_list


def add_arguments(name, parser):
    from astrounsup.instrument import BANDS
    from astrounsup.pipeline import star_defaults, survey_defaults

    what = parser.add_subparsers(dest="what", required=True, metavar="WHAT")
    d = survey_defaults()
    lenses = what.add_parser(
        "lenses",
        help="multi-band cutouts of lenses, non-lenses and anomalies",
        description="Simulate a lens survey: cutouts.h5, fits/, truth.ecsv and montage.png.",
        formatter_class=HelpFormatter,
    )
    lenses.add_argument("--n", type=int, required=True, help="number of cutouts")
    lenses.add_argument("--seed", type=int, default=d["seed"], help="random seed (None: fresh)")
    lenses.add_argument("--out", type=Path, required=True, help="output folder")
    lenses.add_argument(
        "--bands", default=",".join(d["bands"]),
        help=f"comma-separated bands among {','.join(BANDS)}",
    )  # fmt: skip
    lenses.add_argument("--size", type=int, default=d["size"], help="cutout side, pixels")
    lenses.add_argument(
        "--pixel-scale", type=float, default=d["pixel_scale"], help="arcsec per pixel"
    )
    lenses.add_argument(
        "--lens-fraction", type=float, default=d["lens_fraction"], help="share of lenses"
    )
    lenses.add_argument(
        "--anomaly-fraction", type=float, default=d["anomaly_fraction"],
        help="share of anomalies (trails, cosmic rays, ghosts, rings, bleeds)",
    )  # fmt: skip
    lenses.add_argument(
        "--nan-fraction", type=float, default=d["nan_fraction"],
        help="share of cutouts with masked (NaN) pixels",
    )  # fmt: skip
    lenses.add_argument(
        "--device", default=d["device"], help="torch device for rendering (None: the CPU)"
    )
    realism = {
        "offsets": "objects a few pixels off the cutout centre",
        "neighbors": "unrelated field galaxies and stars in every cutout",
        "correlated_noise": "pixel noise correlated as in a resampled coadd",
        "clumpy_sources": "star-forming knots in the lensed sources",
        "variable_depth": "depth and seeing per cutout and band from 1-10 exposures",
        "realistic_artefacts": "trails in some bands or segments, several cosmic-ray shapes, "
        "ghosts of any size",
    }
    for name, text in realism.items():
        lenses.add_argument(
            f"--{name.replace('_', '-')}", default=d[name], action=argparse.BooleanOptionalAction,
            help=text,
        )  # fmt: skip
    lenses.add_argument("--no-fits", action="store_true", help="skip the per-object FITS files")
    lenses.add_argument("--quiet", action="store_true", help="no progress bar")
    lenses.set_defaults(func=_lenses)

    d = star_defaults()
    stars = what.add_parser(
        "stars",
        help="a Gaia-like stellar table for main-sequence studies",
        description="Simulate a Gaia-like star table: stars.ecsv and cmd.png.",
        formatter_class=HelpFormatter,
    )
    stars.add_argument("--n", type=int, required=True, help="number of stars")
    stars.add_argument("--seed", type=int, default=d["seed"], help="random seed (None: fresh)")
    stars.add_argument("--out", type=Path, required=True, help="output folder")
    stars.add_argument(
        "--g-limit", type=float, default=d["g_limit"], help="Gaia G magnitude limit"
    )
    stars.add_argument("--spectra", action="store_true", help="add low-resolution spectra")
    stars.set_defaults(func=_stars)


def _lenses(args):
    from astrounsup.pipeline import make_survey
    from astrounsup.simulate import REALISM

    t0 = time.perf_counter()
    config = {
        "n": args.n,
        "seed": args.seed,
        "bands": comma_list(args.bands),
        "size": args.size,
        "pixel_scale": args.pixel_scale,
        "lens_fraction": args.lens_fraction,
        "anomaly_fraction": args.anomaly_fraction,
        "nan_fraction": args.nan_fraction,
        "device": args.device,
        "fits": not args.no_fits,
        **{name: getattr(args, name) for name in REALISM},
    }
    survey, paths = make_survey(config, args.out, progress=not args.quiet)
    print(survey.summary())
    print(f"wrote {', '.join(str(p) for p in paths.values())} in {time.perf_counter() - t0:.1f} s")
    return 0


def _stars(args):
    import numpy as np

    from astrounsup.pipeline import make_stars

    config = {"n": args.n, "seed": args.seed, "spectra": args.spectra, "g_limit": args.g_limit}
    table, paths = make_stars(config, args.out)
    stages, counts = np.unique(np.asarray(table["stage"]), return_counts=True)
    print(
        f"{len(table)} stars (seed {table.meta['seed']}): "
        + ", ".join(f"{s} {c}" for s, c in zip(stages, counts, strict=True))
    )
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 0
