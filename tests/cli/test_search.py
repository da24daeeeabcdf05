"""``astrounsup search``: the lens search for an installed package, on your cutouts."""

import tomllib
from pathlib import Path

import pytest

from astrounsup.cli import main
from astrounsup.io import write_store
from astrounsup.pipeline import LENS_SEARCH_CONFIG, LENS_SEARCH_FULL_CONFIG

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("name", "defaults"),
    [("lens_search.toml", LENS_SEARCH_CONFIG), ("lens_search_full.toml", LENS_SEARCH_FULL_CONFIG)],
)
def test_the_packaged_settings_are_the_repository_configs(name, defaults):
    with open(ROOT / "pipelines" / "configs" / name, "rb") as f:
        config = tomllib.load(f)
    for section in ("survey", "output"):
        config.pop(section)
    config["cluster"].pop("known_positives")  # the built-in survey's list
    assert config == defaults


def test_search_runs_on_a_store_into_a_folder_of_the_current_directory(
    small_survey, tmp_path, monkeypatch, capsys
):
    s = small_survey
    store = write_store(tmp_path / "mine.h5", s.images[:40], s.table[:40], bands=s.bands,
                        pixel_scale=s.pixel_scale)  # fmt: skip
    ids = tmp_path / "known.txt"
    ids.write_text(
        "\n".join(str(i) for i in s.table["object_id"][:40][s.table["is_lens"][:40]][:3])
    )
    monkeypatch.chdir(tmp_path)
    assert main(["search", str(store), "--known-lenses", str(ids), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "small survey (40 objects)" in out
    assert "cluster: 8 clusters of 40 objects" in out
    assert (tmp_path / "lens_search" / "report" / "index.html").exists()
    assert (tmp_path / "lens_search" / "cluster" / "clusters.ecsv").exists()


def test_search_bad_input_is_one_line(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("not cutouts")
    assert main(["search", str(tmp_path / "notes.txt"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("astrounsup search: error:")
    assert "notes.txt" in err[0]
    assert main(["search", str(tmp_path / "x.h5"), "--labels", "a", "--known-lenses",
                 str(tmp_path / "k.txt")]) == 2  # fmt: skip
    assert "two label regimes" in capsys.readouterr().err
