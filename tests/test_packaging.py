"""The repository keeps its promises: README commands, CI, public API hygiene."""

import importlib
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import astrounsup

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands():
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```bash\n(python3 -m venv[^\n]*)\n```", text)


class TestReadme:
    def test_two_setup_commands(self):
        commands = _readme_commands()
        assert len(commands) == 2
        assert commands[0].endswith("pipelines/lens_search.py")
        assert commands[1].endswith("-m pytest")

    def test_ci_runs_exactly_the_readme_test_command(self):
        ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()
        assert ci[-1] == _readme_commands()[1]

    def test_constraints_pin_torch(self):
        pins = (ROOT / "constraints.txt").read_text()
        assert re.search(r"^torch==2\.13\.0$", pins, re.MULTILINE)


def _isort_key(name):
    """The order ruff (RUF022) keeps: CONSTANTS, then Classes, then functions."""
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def _public_modules():
    for info in pkgutil.walk_packages(astrounsup.__path__, "astrounsup."):
        name = info.name
        parts = name.split(".")[1:]
        if any(part.startswith("_") for part in parts) or parts[0] == "cli":
            continue
        yield name


@pytest.mark.parametrize("name", sorted(_public_modules()))
def test_public_modules_declare_sorted_all(name):
    module = importlib.import_module(name)
    assert hasattr(module, "__all__"), f"{name} has no __all__"
    assert list(module.__all__) == sorted(module.__all__, key=_isort_key), (
        f"{name}.__all__ is not sorted"
    )
    for attr in module.__all__:
        assert hasattr(module, attr), f"{name}.__all__ names missing {attr}"


def test_py_typed_shipped():
    assert (Path(astrounsup.__file__).parent / "py.typed").exists()


def test_console_script_runs():
    out = subprocess.run(
        [sys.executable, "-m", "astrounsup", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.startswith("astrounsup ")


def test_readme_python_example_runs(tmp_path, monkeypatch, capsys):
    text = (ROOT / "README.md").read_text()
    (example,) = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    monkeypatch.chdir(tmp_path)
    exec(compile(example, "README.md", "exec"), {})
    assert "200 cutouts" in capsys.readouterr().out
    assert (tmp_path / "survey.h5").exists()


def test_outputs_get_ordinary_permissions(tmp_path):
    """Atomic writes go through owner-only temporary files; the results must not."""
    import os
    import stat

    from astrounsup._atomic import atomic_directory, atomic_path

    umask = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "f.txt") as tmp:
            tmp.write_text("x")
        with atomic_directory(tmp_path / "d") as tmp:
            (tmp / "a").write_text("y")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "f.txt").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o755


def test_the_wheel_holds_the_report_assets_and_the_shipped_encoder(tmp_path):
    """The report's style sheet and scripts and the pretrained encoder with its card are
    package data (a copy of the sources is built, so the tree gets no build folders)."""
    import shutil
    import zipfile

    src = tmp_path / "src"
    shutil.copytree(ROOT / "astrounsup", src / "astrounsup",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "--no-index", "-w", str(tmp_path / "dist"), str(src)],
        check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assets = sorted(p.name for p in (ROOT / "astrounsup" / "report" / "assets").iterdir())
    assert assets == ["report.css", "vetting.html", "vetting.js"]
    for name in assets:
        assert f"astrounsup/report/assets/{name}" in names
    assert "astrounsup/py.typed" in names
    weights = sorted(p.name for p in (ROOT / "astrounsup" / "training" / "weights").iterdir())
    assert weights == ["simclr_gri.json", "simclr_gri.pt"]
    for name in weights:
        assert f"astrounsup/training/weights/{name}" in names
