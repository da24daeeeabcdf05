"""The command line as a whole: help, defaults, speed of --help, one-line errors."""

import argparse
import subprocess
import sys

import pytest

from astrounsup.cli import COMMANDS, _parser, main


def _actions(parser):
    """Every option of ``parser`` and of its sub-commands, with the parser's name."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                for prog, inner in _actions(sub):
                    yield f"{name} {prog}".strip(), inner
        elif not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            yield "", action


def test_every_option_has_help_that_shows_its_default():
    parser = _parser("*")
    seen = 0
    for where, action in _actions(parser):
        name = f"{where} {'/'.join(action.option_strings) or action.dest}"
        assert action.help, f"{name} has no help text"
        if action.option_strings and action.default not in (None, False):
            shown = _formatted(action)
            assert f"(default: {action.default})" in shown, f"{name} does not show its default"
        seen += 1
    assert seen > 60  # every command's options were built


def _formatted(action):
    """The help of ``action`` as ``astrounsup <command> --help`` prints it."""
    from astrounsup.cli._common import HelpFormatter

    return HelpFormatter("astrounsup")._get_help_string(action) % {"default": action.default}


def test_help_does_not_import_torch():
    """Every command's help but ``simulate``'s (its defaults are the simulator's own
    signature) answers without loading PyTorch; the first command that loads it is named."""
    from astrounsup.cli import COMMANDS

    commands = [c for c in COMMANDS if c != "simulate"]
    code = (
        "import sys\nfrom astrounsup.cli import main\n"
        f"for argv in [['--help']] + [[c, '--help'] for c in {commands!r}]:\n"
        "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
        "    if 'torch' in sys.modules:\n        print('loaded by', argv)\n        break\n"
        "else:\n    print('never loaded')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip().splitlines()[-1] == "never loaded"


def test_top_level_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--data", "s.h5", "--model", "cae", "--out", "r", "--device", "gpu"],
        ["embed", "--checkpoint", "c.pt", "--data", "s.h5", "--out", "l.h5", "--device", "gpu"],
        ["simulate", "lenses", "--n", "2", "--out", "o", "--device", "gpu", "--quiet"],
    ],
)
def test_an_unknown_device_is_one_line_naming_the_allowed_values(
    argv, tmp_path, capsys, small_survey, monkeypatch
):
    from astrounsup.io import write_store
    from astrounsup.training import train

    monkeypatch.chdir(tmp_path)
    write_store("s.h5", small_survey.images[:16], small_survey.table[:16],
                bands=small_survey.bands, pixel_scale=0.263)  # fmt: skip
    config = {"model": {"latent_dim": 4, "widths": [4, 8]},
              "training": {"max_steps": 1, "batch_size": 8}}  # fmt: skip
    train("s.h5", config=config, progress=False).save("c.pt")
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err.endswith("device must be 'cpu', 'cuda', 'cuda:N' or 'mps'; got 'gpu'")
