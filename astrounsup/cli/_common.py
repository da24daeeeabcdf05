"""What every command shares: the help layout, the output options, reading a table."""

from __future__ import annotations

import argparse
from pathlib import Path


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help that shows each option's default (when it has one) after its text."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if (
            "%(default)" not in text
            and default is not None
            and default is not argparse.SUPPRESS
            and action.option_strings
            and not isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction))
        ):
            text += " (default: %(default)s)"
        return text


def command_parser(sub, name, *, help, description=None):
    """A sub-command parser with the shared help layout."""
    return sub.add_parser(
        name, help=help, description=description or help, formatter_class=HelpFormatter
    )


def add_output_options(parser, *, seed=True, formats=True):
    """``--out``, ``--format``, ``--overwrite`` and ``--seed``."""
    from astrounsup.pipeline._results import FORMATS

    parser.add_argument("--out", type=Path, required=True, help="output folder")
    if formats:
        parser.add_argument(
            "--format", choices=sorted(FORMATS), default="ecsv", help="catalog file format"
        )
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    if seed:
        parser.add_argument("--seed", type=int, default=0, help="random seed")


def comma_list(text):
    """``"a,b,,c"`` -> ``["a", "b", "c"]``."""
    return [part.strip() for part in text.split(",") if part.strip()]


def print_paths(paths, *, width=16):
    """One line per written output: its name (``figure`` for a figure) and path."""
    for key, path in paths.items():
        name = "figure" if Path(path).suffix == ".png" else key
        print(f"  {name:{width}s} {path}")
