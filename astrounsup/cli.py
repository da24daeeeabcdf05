"""The ``astrounsup`` command: composes the library's steps; holds no science."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

__all__ = ["main", "simulate_lenses_to_directory", "simulate_stars_to_directory"]


def simulate_lenses_to_directory(
    out, *, n, seed, fits=True, montage=True, progress=False, **params
):
    """Simulate a lens survey and write it to ``out``; return the survey and the paths.

    ``out`` receives ``cutouts.h5``, ``fits/<object_id>.fits``, ``truth.ecsv`` and
    ``montage.png``. ``params`` are passed to
    :func:`astrounsup.simulate.simulate_lens_survey`.
    """
    from astrounsup.io import write_survey_directory
    from astrounsup.plotting import kind_montage, save_figure
    from astrounsup.simulate import simulate_lens_survey

    survey = simulate_lens_survey(n, seed=seed, progress=progress, **params)
    paths = write_survey_directory(
        out,
        survey.images,
        survey.table,
        bands=survey.bands,
        pixel_scale=survey.pixel_scale,
        fits=fits,
    )
    if montage:
        fig = kind_montage(
            survey.images, survey.table["kind"], survey.bands, titles=survey.table["object_id"]
        )
        paths["montage"] = save_figure(fig, Path(out) / "montage.png", dpi=100)
    return survey, paths


def simulate_stars_to_directory(out, *, n, seed, spectra=False, **params):
    """Simulate a Gaia-like stellar table; write ``stars.ecsv`` and ``cmd.png`` to ``out``."""
    from astrounsup._atomic import atomic_path
    from astrounsup.plotting import colour_magnitude_figure, save_figure
    from astrounsup.simulate import simulate_stars

    table = simulate_stars(n, seed=seed, spectra=spectra, **params)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "stars.ecsv") as tmp:
        table.write(tmp, format="ascii.ecsv", overwrite=True)
    save_figure(colour_magnitude_figure(table), out / "cmd.png", dpi=100)
    return table, {"table": out / "stars.ecsv", "figure": out / "cmd.png"}


def _simulate_lenses(args):
    t0 = time.perf_counter()
    survey, paths = simulate_lenses_to_directory(
        args.out,
        n=args.n,
        seed=args.seed,
        bands=tuple(args.bands.split(",")),
        size=args.size,
        pixel_scale=args.pixel_scale,
        lens_fraction=args.lens_fraction,
        anomaly_fraction=args.anomaly_fraction,
        nan_fraction=args.nan_fraction,
        device=args.device,
        fits=not args.no_fits,
        progress=not args.quiet,
    )
    print(survey.summary())
    print(f"wrote {', '.join(str(p) for p in paths.values())} in {time.perf_counter() - t0:.1f} s")
    return 0


def _simulate_stars(args):
    table, paths = simulate_stars_to_directory(
        args.out, n=args.n, seed=args.seed, spectra=args.spectra, g_limit=args.g_limit
    )
    import numpy as np

    stages, counts = np.unique(np.asarray(table["stage"]), return_counts=True)
    print(
        f"{len(table)} stars (seed {table.meta['seed']}): "
        + ", ".join(f"{s} {c}" for s, c in zip(stages, counts, strict=True))
    )
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 0


def _ingest(args):
    from astrounsup.io import ingest

    t0 = time.perf_counter()
    report = ingest(
        args.src,
        args.dest,
        catalog=args.catalog,
        bands=tuple(args.bands.split(",")) if args.bands else None,
        file_column=args.file_column,
        id_column=args.id_column,
        band_pattern=args.band_pattern,
        compression=None if args.compression == "none" else args.compression,
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    resumed = f" (resumed after {report.resumed_from} entries)" if report.resumed_from else ""
    print(
        f"{report.store}: {report.n_written} cutouts written, {report.n_rejected} rejected"
        f"{resumed} in {time.perf_counter() - t0:.1f} s"
    )
    if report.n_rejected:
        print(f"rejects, with file, object and reason: {report.rejects}")
    return 0


def _info(args):
    from astrounsup.io import rejects_path, store_info

    info = store_info(args.store)
    rows = [
        ("store", info["path"]),
        ("format", f"{info['format']} v{info['format_version']}, complete: {info['complete']}"),
        (
            "cutouts",
            f"{info['shape'][0]} of {info['shape'][1]} bands x "
            f"{info['shape'][2]} x {info['shape'][3]} px",
        ),
        ("bands", ", ".join(info["bands"])),
        ("pixel scale", f"{info['pixel_scale']:.4g} arcsec/px"),
        ("flux unit", info["flux_unit"]),
        (
            "storage",
            f"chunks of {info['chunks'][0]} cutouts, compression "
            f"{info['compression'] or 'none'}, {info['size_bytes'] / 2**20:.1f} MiB"
            + (", with masks" if info["has_masks"] else ""),
        ),
        ("catalog", ", ".join(info["columns"])),
        ("written", f"{info.get('date', 'unknown')} by astrounsup {info['astrounsup_version']}"),
    ]
    rej = rejects_path(args.store)
    if rej.exists():
        from astropy.table import Table

        rows.append(("rejects", f"{len(Table.read(rej))} in {rej}"))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:>{width}}: {value}")
    return 0


def _train(args):
    from astrounsup.training import load_config, train_store

    config = load_config(args.config)
    if args.steps is not None:
        config["training"]["max_steps"] = args.steps
    config["training"].setdefault("max_steps", 1000)
    t0 = time.perf_counter()
    trainer = train_store(
        args.data,
        args.out,
        model=args.model,
        config=config,
        resume=args.resume,
        device=args.device,
        progress=not args.quiet,
    )
    if trainer.rank == 0:
        h = trainer.history
        val = f", validation {h.val_loss[-1]:.4g}" if h.val_loss else ""
        print(
            f"{args.model}: {trainer.step} steps, loss {h.loss[-1]:.4g}{val}, "
            f"{time.perf_counter() - t0:.0f} s; wrote {args.out}/last.pt, history.json, "
            "loss_curve.png"
        )
    return 0


def _embed(args):
    from astrounsup.latent import embed_store

    path = embed_store(
        args.checkpoint, args.data, args.out, batch_size=args.batch_size, device=args.device
    )
    print(f"wrote {path}")
    return 0


def _parser():
    parser = argparse.ArgumentParser(
        prog="astrounsup",
        description="Deep unsupervised learning on astronomical survey cutouts.",
    )
    from astrounsup import __version__

    parser.add_argument("--version", action="version", version=f"astrounsup {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sim = sub.add_parser("simulate", help="make a synthetic survey with its truth")
    what = sim.add_subparsers(dest="what", required=True)

    lenses = what.add_parser("lenses", help="multi-band cutouts of lenses, non-lenses, anomalies")
    lenses.add_argument("--n", type=int, required=True, help="number of cutouts")
    lenses.add_argument("--seed", type=int, default=None, help="random seed (default: fresh)")
    lenses.add_argument("--out", type=Path, required=True, help="output directory")
    lenses.add_argument("--bands", default="g,r,i", help="comma-separated bands (g,r,i,z,Y)")
    lenses.add_argument("--size", type=int, default=64, help="cutout side, pixels")
    lenses.add_argument("--pixel-scale", type=float, default=0.263, help="arcsec per pixel")
    lenses.add_argument("--lens-fraction", type=float, default=0.5)
    lenses.add_argument("--anomaly-fraction", type=float, default=0.01)
    lenses.add_argument("--nan-fraction", type=float, default=0.02)
    lenses.add_argument("--device", default=None, help="torch device for rendering")
    lenses.add_argument("--no-fits", action="store_true", help="skip the per-object FITS files")
    lenses.add_argument("--quiet", action="store_true", help="no progress bar")
    lenses.set_defaults(func=_simulate_lenses)

    stars = what.add_parser("stars", help="a Gaia-like stellar table for main-sequence studies")
    stars.add_argument("--n", type=int, required=True, help="number of stars")
    stars.add_argument("--seed", type=int, default=None, help="random seed (default: fresh)")
    stars.add_argument("--out", type=Path, required=True, help="output directory")
    stars.add_argument("--g-limit", type=float, default=20.0, help="Gaia G magnitude limit")
    stars.add_argument("--spectra", action="store_true", help="add low-resolution spectra")
    stars.set_defaults(func=_simulate_stars)

    ing = sub.add_parser("ingest", help="FITS cutouts into one HDF5 store (resumable)")
    ing.add_argument(
        "src",
        help="folder or glob of FITS files; with --catalog, the folder "
        "its relative paths start from",
    )
    ing.add_argument("dest", type=Path, help="the store to write (.h5)")
    ing.add_argument("--catalog", type=Path, help="CSV/ECSV/FITS table with a file column")
    ing.add_argument("--file-column", default="file")
    ing.add_argument("--id-column", default="object_id")
    ing.add_argument(
        "--band-pattern",
        default=None,
        help="regex with groups object_id and band grouping per-band files",
    )
    ing.add_argument("--bands", default=None, help="comma-separated bands to keep, in order")
    ing.add_argument("--compression", choices=("none", "gzip", "lzf"), default="none")
    ing.add_argument("--overwrite", action="store_true", help="start again from scratch")
    ing.add_argument("--quiet", action="store_true", help="no progress bar")
    ing.set_defaults(func=_ingest)

    from astrounsup.training.recipes import MODELS

    tr = sub.add_parser("train", help="train a model on an HDF5 store (torchrun for many)")
    tr.add_argument("--data", type=Path, required=True, help="the HDF5 cutout store")
    tr.add_argument("--model", choices=sorted(MODELS), required=True)
    tr.add_argument(
        "--config",
        type=Path,
        default=None,
        help="TOML with [model], [training] and [normalization] sections",
    )
    tr.add_argument("--out", type=Path, required=True, help="run directory")
    tr.add_argument("--steps", type=int, default=None, help="override training.max_steps")
    tr.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    tr.add_argument("--device", default=None, help="default: CUDA, then MPS, then CPU")
    tr.add_argument("--quiet", action="store_true", help="no progress bar")
    tr.set_defaults(func=_train)

    em = sub.add_parser("embed", help="latent vectors of a store's cutouts")
    em.add_argument("--checkpoint", type=Path, required=True)
    em.add_argument("--data", type=Path, required=True)
    em.add_argument("--out", type=Path, required=True, help="LATENTS.h5")
    em.add_argument("--batch-size", type=int, default=256)
    em.add_argument("--device", default=None)
    em.set_defaults(func=_embed)

    from astrounsup._cli_science import add_parsers

    add_parsers(sub)

    info = sub.add_parser("info", help="what an HDF5 cutout store holds")
    info.add_argument("store", type=Path)
    info.set_defaults(func=_info)
    return parser


def main(argv=None):
    """Run the ``astrounsup`` command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "train":
        _init_distributed()
    try:
        return args.func(args)
    except (ValueError, TypeError, OSError, KeyError) as err:
        print(f"astrounsup {args.command}: error: {err}", file=sys.stderr)
        return 2
    finally:
        _close_distributed()


def _init_distributed():
    """Join the process group when launched by torchrun (its variables are set)."""
    import os

    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        import torch
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")


def _close_distributed():
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
