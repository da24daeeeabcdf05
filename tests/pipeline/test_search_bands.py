"""The lens search on surveys the arc features cannot measure (its own file: a whole run, on
its own pytest-xdist worker)."""

from astropy.table import QTable

from astrounsup.io import write_store
from astrounsup.pipeline import run_lens_search

MODEL = {"recipe": "simclr", "steps": 2,
         "config": {"model": {"latent_dim": 4, "widths": [4, 8]},
                    "training": {"batch_size": 8, "compile": False}}}  # fmt: skip


def test_a_one_band_survey_runs_without_the_arc_features(small_survey, tmp_path):
    s = small_survey
    store = tmp_path / "r.h5"
    write_store(store, s.images[:30, 1:2], s.table[:30], bands=["r"], pixel_scale=s.pixel_scale)
    cfg = {"model": MODEL, "cluster": {"k": 3, "labels_column": "is_lens"},
           "anomalies": {"methods": ["lof"], "n_neighbors": 5, "gallery": 0}}  # fmt: skip
    lines = []
    done = run_lens_search(store, tmp_path / "out", cfg, progress=False, log=lines.append)
    assert "features: not measured: one band (['r']): the arc features need two bands for a " \
           "colour" in lines  # fmt: skip
    assert "features" not in done
    assert "arc_score" not in QTable.read(done["cluster"]["clusters"]).colnames
