"""The report of a run without labels, in a real headless browser (its own file: its own
pytest-xdist worker beside the other page tests)."""

import numpy as np

from astrounsup.io import write_store
from astrounsup.pipeline import cluster_latents, measure_arc_features
from astrounsup.report import write_report
from tests.report.test_page import _chromium

N = 40


def test_without_labels_the_lens_gallery_is_the_arc_ranking(small_survey, tmp_path):
    s = small_survey
    store = tmp_path / "cutouts.h5"
    write_store(store, s.images[:N], s.table[:N], bands=s.bands, pixel_scale=s.pixel_scale)
    z = np.random.default_rng(0).normal(size=(N, 6))
    arcs = measure_arc_features(store).tables["arc_features"]
    clusters = cluster_latents(z, s.table[:N]["object_id", "ra", "dec"], {"k": 4},
                               arc_features=arcs).tables["clusters"]  # fmt: skip
    assert "lens_rank" not in clusters.colnames
    page = write_report(tmp_path / "report", store, z, clusters)
    driver = _chromium()
    try:
        driver.get(page.as_uri())
        heading, ids = driver.execute_script(
            "const g = document.querySelector('[data-gallery=lenses]');"
            "const h = document.getElementById('lenses');"
            "return [h ? h.innerText : null,"
            "        [...g.querySelectorAll('.card')].map(c => c.dataset.id)];"
        )
    finally:
        driver.quit()
    assert heading.startswith("Lens-like cutouts (no labels)")
    order = np.argsort(np.asarray(clusters["arc_rank"]))
    assert ids == [str(clusters["object_id"][i]) for i in order[: len(ids)]]
    assert len(ids) == min(24, N)
