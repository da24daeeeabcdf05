"""The ``astrounsup`` command: parses arguments, calls the library, prints.

Each command's options are built only when that command runs, so ``astrounsup --help``
answers at once, without importing PyTorch.
"""

from __future__ import annotations

import argparse
import importlib
import sys

__all__ = ["main"]

#: Command -> (module of astrounsup.cli that builds and runs it, one-line help).
COMMANDS = {
    "simulate": ("simulate", "make a synthetic survey with its truth"),
    "ingest": ("data", "FITS cutouts into one HDF5 store (resumable)"),
    "info": ("data", "what an HDF5 cutout store holds"),
    "train": ("train", "train a model on cutouts (torchrun for many processes)"),
    "embed": ("train", "latent vectors of a store's cutouts"),
    "features": ("data", "arc features of a store's cutouts: blue light around red centres"),
    "cluster": ("latent", "cluster latents; with labels, name and score clusters"),
    "rank": ("latent", "fold vetted grades into a clustering's labels and re-rank"),
    "reduce": ("latent", "PCA/UMAP/t-SNE of latents or a table; the main sequence"),
    "anomalies": ("latent", "rank objects by anomaly scores"),
    "similar": ("latent", "nearest neighbours of objects or of a new cutout"),
    "search": ("search", "the lens and anomaly search on your cutouts, with its report"),
}

#: Errors that end a command with one line naming the problem (and exit status 2).
_USER_ERRORS = (ValueError, TypeError, OSError, KeyError, ArithmeticError)


def _parser(command=None):
    """The parser; only ``command``'s options are built (all commands' for ``"*"``)."""
    from astrounsup import __version__
    from astrounsup.cli._common import HelpFormatter, command_parser

    parser = argparse.ArgumentParser(
        prog="astrounsup",
        description="Deep unsupervised learning on astronomical survey cutouts.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"astrounsup {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, text) in COMMANDS.items():
        p = command_parser(sub, name, help=text)
        if command in (name, "*"):
            importlib.import_module(f"astrounsup.cli.{module}").add_arguments(name, p)
    return parser


def _command_of(argv):
    """The command named in ``argv``: its first word that is not an option."""
    return next((a for a in argv if not a.startswith("-")), None)


def _refuse_input_as_output(args):
    """Refuse an output (``--out``, or ingest's store) that is one of the command's input
    files, links resolved: ``--overwrite`` would replace the input with the result."""
    import os

    out = getattr(args, "dest", None) or getattr(args, "out", None)
    if out is None or not os.path.exists(out):
        return
    target = os.path.realpath(out)
    for name, value in vars(args).items():
        if name in ("dest", "out", "func", "command"):
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            if isinstance(v, (str, os.PathLike)) and os.path.exists(v) and (
                    os.path.realpath(v) == target):  # fmt: skip
                option = name.replace("_", "-")
                msg = f"{out}: the output is the input ({option}); choose another output path"
                raise ValueError(msg)


def _holding_outputs(args):
    """The lock of the command's output (``--out``, or ingest's store) for its whole run, so
    that a second writer is refused before any work; process 0 of a torchrun writes."""
    import contextlib
    import os

    from astrounsup._locks import output_lock

    out = getattr(args, "dest", None) or getattr(args, "out", None)
    if out is None or os.environ.get("RANK", "0") != "0":  # torchrun names each process
        return contextlib.nullcontext()
    return output_lock(out)


def main(argv=None):
    """Run the ``astrounsup`` command line; returns the exit status."""
    from astrounsup.training.distributed import init_from_environment, shutdown

    argv = sys.argv[1:] if argv is None else list(argv)
    args = _parser(_command_of(argv)).parse_args(argv)
    try:
        if args.command in ("train", "embed"):
            init_from_environment()
        _refuse_input_as_output(args)
        with _holding_outputs(args):
            return args.func(args)
    except _USER_ERRORS as err:
        print(f"astrounsup {args.command}: error: {err}", file=sys.stderr)
        return 2
    finally:
        if args.command in ("train", "embed"):
            shutdown()
