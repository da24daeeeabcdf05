"""``astrounsup train`` and ``astrounsup embed``: a model from cutouts, latents from a model."""

from __future__ import annotations

import os
import time
from pathlib import Path

from astrounsup._ranks import launch_rank

_DEVICE_HELP = "'cpu', 'cuda', 'cuda:N' or 'mps' (None: CUDA, then MPS, then CPU)"


def add_arguments(name, parser):
    if name == "train":
        _train_arguments(parser)
    else:
        _embed_arguments(parser)


def _train_arguments(parser):
    from astrounsup.training.recipes import DEFAULT_MAX_STEPS, MODELS

    parser.add_argument(
        "--data", type=Path, required=True,
        help="the HDF5 cutout store, or a folder of shards",
    )  # fmt: skip
    parser.add_argument("--model", choices=sorted(MODELS), required=True, help="the recipe")
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="TOML with [model], [training] and [normalization] tables, each merged over "
        "the recipe's defaults (None: the defaults)",
    )
    parser.add_argument("--out", type=Path, required=True, help="run folder")
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help=f"training steps, replacing training.max_steps (None: the config's, or "
        f"{DEFAULT_MAX_STEPS})",
    )
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    parser.add_argument(
        "--init", default=None,
        help="initial weights: 'pretrained' (the encoder shipped with the package, SimCLR "
        "on g, r, i) or a checkpoint; --steps 0 keeps them untrained (None: random)",
    )  # fmt: skip
    parser.add_argument(
        "--pixel-scale", type=float, default=None,
        help="arcsec per pixel, for cutouts that do not record theirs (None: theirs)",
    )  # fmt: skip
    parser.add_argument("--device", default=None, help=_DEVICE_HELP)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=_train)


def _embed_arguments(parser):
    parser.add_argument("--checkpoint", type=Path, required=True, help="a trained model")
    parser.add_argument(
        "--data", type=Path, required=True,
        help="the HDF5 cutout store, or a folder of shards (its shards are dealt to the "
        "processes of torchrun)",
    )  # fmt: skip
    parser.add_argument(
        "--out", type=Path, required=True,
        help="the latents file (.h5), or a folder for a latents set (one file per shard)",
    )  # fmt: skip
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    parser.add_argument("--batch-size", type=int, default=256, help="cutouts per batch")
    parser.add_argument("--device", default=None, help=_DEVICE_HELP)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=_embed)


def _train(args):
    from astrounsup.pipeline import train_model
    from astrounsup.training import is_main_process, load_config, resolve_config

    resolve_config(args.config, model=args.model)  # a bad key is named with its file
    config = {"recipe": args.model, "steps": args.steps, "config": load_config(args.config),
              "init": args.init}  # fmt: skip
    t0 = time.perf_counter()
    trained = train_model(
        args.data, config, out=args.out, resume=args.resume, device=args.device,
        progress=not args.quiet, pixel_scale=args.pixel_scale,
    )  # fmt: skip
    if is_main_process():
        h = trained.history
        val = f", validation {h.val_loss[-1]:.4g}" if h is not None and h.val_loss else ""
        files = "last.pt, history.json, loss_curve.png" if trained.steps else "last.pt"
        print(f"{trained.describe()}{val}, {time.perf_counter() - t0:.0f} s; wrote "
              f"{args.out}/{files}")  # fmt: skip
    return 0


def _embed(args):
    from astrounsup.io import source_kind
    from astrounsup.pipeline import embed_latents, embed_survey
    from astrounsup.training import is_main_process

    # Refused before any work, as every other command's outputs are; under torchrun by
    # process 0 alone (the others could see the output it has begun to write).
    if launch_rank() == 0 and args.out.exists() and not args.overwrite:
        msg = f"{args.out} exists; pass --overwrite to replace it"
        raise FileExistsError(msg)
    options = {"batch_size": args.batch_size, "device": args.device, "progress": not args.quiet}
    if source_kind(args.data) in ("store", "shards"):
        # Shard by shard, in the memory of a batch, split across torchrun's processes.
        embed_survey(args.checkpoint, args.data, args.out, **options)
    elif int(os.environ.get("WORLD_SIZE", "1")) > 1:
        msg = (
            f"--data: under torchrun, embed a store or a sharded store; ingest {args.data} "
            "first (astrounsup ingest --shard-size N)"
        )
        raise ValueError(msg)
    else:
        embed_latents(args.checkpoint, args.data, out=args.out, **options)
    if is_main_process():
        print(f"wrote {args.out}")
    return 0
