"""Pretrain the encoder shipped with the package on built-in surveys made on the fly.

    python pipelines/pretrain.py [--config pipelines/configs/pretrain.toml] [--chunks N]
                                 [--out DIR] [--from-shipped] [--ship] [--device cuda]

Trains SimCLR on one built-in survey after another (``[pretrain]`` of the config:
:func:`astrounsup.pipeline.pretrain_encoder`), writing ``encoder.pt`` and ``progress.json``
into the output folder (``catalogs/pretrain``) after each. Run again, it goes on from the
last finished survey; ``--from-shipped`` starts a new folder from the shipped weights and
the surveys their card lists (resuming across sessions from the committed file); ``--ship``
writes the folder's encoder into the package with its card
(:func:`astrounsup.training.write_pretrained`): weights, SHA-256, settings, every survey and
the seconds they took.
"""

from __future__ import annotations

import argparse
import sys
import time
import tomllib
from pathlib import Path

from astrounsup.pipeline import pretrain_encoder
from astrounsup.training import load_pretrained, write_pretrained

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = Path(__file__).parent / "configs" / "pretrain.toml"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="pretraining TOML")
    parser.add_argument(
        "--chunks",
        type=int,
        default=None,
        help="stop after this many surveys in all (default: the config's)",
    )
    parser.add_argument("--out", type=Path, default=None, help="override output.directory")
    parser.add_argument(
        "--from-shipped",
        action="store_true",
        help="start a new output folder from the shipped weights",
    )
    parser.add_argument(
        "--ship", action="store_true", help="write the encoder into the package with its card"
    )
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: best)")
    args = parser.parse_args(argv)
    with open(args.config, "rb") as f:
        config = tomllib.load(f)
    out = args.out or ROOT / config["output"]["directory"]
    t0 = time.perf_counter()
    try:
        encoder = pretrain_encoder(
            config["pretrain"], out, model=config.get("model"), chunks=args.chunks,
            init=load_pretrained() if args.from_shipped else None, device=args.device,
        )  # fmt: skip
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    done = encoder.progress["surveys"]
    print(f"{len(done)} surveys, {sum(s['seconds'] for s in done) / 3600:.2f} h in all "
          f"({time.perf_counter() - t0:.0f} s this run): {out / 'encoder.pt'}")  # fmt: skip
    if args.ship:
        settings = encoder.progress["settings"]
        card = {
            "size": settings["size"],
            "pixel_scale_range": list(settings["pixel_scale"]),
            "steps": settings["steps"] * len(done),
            "seconds": round(sum(s["seconds"] for s in done), 1),
            "settings": settings,
            "model": encoder.progress["model"],
            "surveys": done,
        }
        print(f"shipped: {write_pretrained(encoder, card=card)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
