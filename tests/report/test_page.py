"""The report page, in a real headless browser (Chromium through Selenium), and its files."""

import json
import os
import shutil
import time

import numpy as np
import pytest

from astrounsup.io import write_store
from astrounsup.pipeline import cluster_latents, score_anomalies
from astrounsup.report import legacy_viewer_url, write_report

N = 40


@pytest.fixture(scope="module")
def run(small_survey, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    s = small_survey
    table = s.table[:N]
    table["file"] = [f"cutouts/{i}.fits" for i in table["object_id"]]  # as ingest writes
    store = tmp / "cutouts.h5"
    write_store(store, s.images[:N], table, bands=s.bands, pixel_scale=s.pixel_scale)
    rng = np.random.default_rng(0)
    z = rng.normal(size=(N, 6)) + 4.0 * np.asarray(table["is_lens"])[:, None]
    clusters = cluster_latents(z, table, {"k": 4, "labels_column": "is_lens",
                                          "labeled_fraction": 0.5}).tables["clusters"]  # fmt: skip
    anomalies = score_anomalies(z, table, {"methods": ["lof"], "n_neighbors": 5, "detectors": [],
                                           "gallery": 0}).tables["anomalies"]  # fmt: skip
    clusters.write(tmp / "clusters.ecsv")
    page = write_report(tmp / "report", store, z, clusters, anomalies,
                        summary={"data": "a test survey", "model": "none"},
                        links={"clusters": tmp / "clusters.ecsv"})  # fmt: skip
    return {"page": page, "clusters": clusters, "anomalies": anomalies, "z": z,
            "store": store, "dir": tmp}  # fmt: skip


def test_the_folder_holds_the_page_and_one_thumbnail_per_object(run):
    folder = run["page"].parent
    assert run["page"].name == "index.html"
    assert len(list((folder / "thumbs").glob("*.png"))) == N
    assert not [p for p in run["dir"].iterdir() if p.name.endswith(".partial")]


def test_cards_of_objects_whose_labels_were_used_say_so(run):
    text = run["page"].read_text()
    assert "known its label ranked the others" in text


def test_bad_input_leaves_no_report(run, tmp_path):
    with pytest.raises(ValueError, match=r"latents must be \(n, d\) with one row per cutout"):
        write_report(tmp_path / "r", run["store"], run["z"][:-1], run["clusters"])
    others = run["clusters"].copy()
    others["object_id"][0] = "somebody-else"
    with pytest.raises(ValueError, match=r"1 objects are not in a catalog, e.g. \['sim"):
        write_report(tmp_path / "r", run["store"], run["z"], others)
    assert not (tmp_path / "r").exists()


def test_the_sky_viewer_link_is_built_from_ra_dec():
    url = legacy_viewer_url(10.5, -3.25, zoom=14)
    assert (
        url
        == "https://www.legacysurvey.org/viewer?ra=10.500000&dec=-3.250000&layer=ls-dr10&zoom=14"
    )


def _chromium():
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not binary or not driver:
        pytest.skip("the browser tests need Chromium and chromedriver (Debian: chromium "
                    "chromium-driver); not found on PATH")  # fmt: skip
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (.[test])")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1200,1000",
                "--disable-dev-shm-usage"):  # fmt: skip
        options.add_argument(arg)
    options.binary_location = binary
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=options)


@pytest.fixture(scope="module")
def browser(run):
    driver = _chromium()
    driver.get(run["page"].as_uri())
    deadline = time.time() + 20
    while time.time() < deadline and not driver.execute_script(_PLOT_POINT):
        time.sleep(0.2)
    yield driver
    driver.quit()


# Where the map's first point is drawn: the plot view's element and canvas coordinates.
_PLOT_POINT = """
function* walk(v) {
  yield v;
  for (const c of (v.child_views || [])) yield* walk(c);
}
if (typeof Bokeh === 'undefined') return null;
const roots = Bokeh.index.roots ? [...Bokeh.index.roots] : Object.values(Bokeh.index);
for (const r of roots) for (const v of walk(r)) {
  if (v.frame && v.model.renderers && v.model.renderers.length) {
    const d = v.model.renderers[0].data_source.data;
    const i = arguments.length ? arguments[0] : 0;
    return {el: v.el, x: v.frame.x_scale.compute(d.x[i]), y: v.frame.y_scale.compute(d.y[i]),
            n: d.x.length, id: d.object_id[i]};
  }
}
return null;
"""

# Images anywhere in the page, shadow roots included (bokeh draws its tooltips there).
_SHADOW_IMAGES = """
const found = [];
function look(root) {
  for (const el of root.querySelectorAll('*')) {
    if (el.tagName === 'IMG' && el.closest && (el.getAttribute('src') || '').startsWith('thumbs/')
        && el.offsetParent !== null && !el.closest('.card')) found.push(el.getAttribute('src'));
    if (el.shadowRoot) look(el.shadowRoot);
  }
}
look(document);
return found;
"""


def test_the_page_loads_without_console_errors_and_the_map_renders(browser):
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    point = browser.execute_script(_PLOT_POINT)
    assert point is not None, "no bokeh plot view"
    assert point["n"] == N
    size = browser.execute_script("const r = arguments[0].getBoundingClientRect();"
                                  "return [r.width, r.height];", point["el"])  # fmt: skip
    assert size[0] > 300
    assert size[1] > 300


def test_gallery_counts_match_the_catalogs(browser, run):
    clusters = run["clusters"]
    count = browser.execute_script(
        "const out = {}; for (const g of document.querySelectorAll('[data-gallery]'))"
        " out[g.dataset.gallery] = g.querySelectorAll('.card').length; return out;"
    )
    sizes = {int(c): int((clusters["cluster"] == c).sum()) for c in np.unique(clusters["cluster"])}
    for c, size in sizes.items():
        assert count[f"cluster-{c}"] == min(size, 6 + 3)
    assert count["lenses"] == min(24, N)
    assert count["anomalies"] == min(24, N)
    looks = [k for k in count if k.startswith("like-")]
    assert len(looks) == 6
    assert all(count[k] == 7 for k in looks)  # the object and its 6 look-alikes
    # The lens cards are the candidates to vet: the objects whose labels were not used, by
    # rank, then the labelled ones; the first has its sky-viewer link.
    shown = browser.execute_script(
        "return Array.from(document.querySelectorAll('[data-gallery=lenses] .card'),"
        " c => [c.dataset.id, c.querySelector('a').href]);"
    )
    labeled = np.asarray(clusters["labeled"], bool)
    order = np.lexsort((np.asarray(clusters["lens_rank"]), labeled))[:24]
    assert [i for i, _ in shown] == [str(v) for v in clusters["object_id"][order]]
    assert labeled[order[: (~labeled).sum()]].sum() == 0
    top = clusters[order[0]]
    assert shown[0][1] == legacy_viewer_url(top["ra"].value, top["dec"].value)
    note = browser.find_element("css selector", "#lenses .note").text
    assert f"({labeled.sum()} labelled or known left out)" in note
    # An anomaly card names the scorer that put it highest.
    card = browser.find_element("css selector", "[data-gallery=anomalies] .card")
    assert "found by lof" in card.text


def test_hovering_a_point_shows_its_thumbnail(browser):
    from selenium.webdriver.common.action_chains import ActionChains

    point = browser.execute_script(_PLOT_POINT)
    rect = browser.execute_script("const r = arguments[0].getBoundingClientRect();"
                                  "return [r.width, r.height];", point["el"])  # fmt: skip
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", point["el"])
    ActionChains(browser).move_to_element_with_offset(
        point["el"], int(point["x"] - rect[0] / 2), int(point["y"] - rect[1] / 2)
    ).perform()
    deadline = time.time() + 5
    shown = []
    while time.time() < deadline and not shown:
        shown = browser.execute_script(_SHADOW_IMAGES)
        time.sleep(0.1)
    assert shown, "no tooltip thumbnail after hovering the first point"
    assert all(src.startswith("thumbs/") for src in shown)


def test_a_screenshot_is_not_blank(browser, tmp_path):
    from PIL import Image

    path = tmp_path / "shot.png"
    assert browser.save_screenshot(os.fspath(path))
    pixels = np.asarray(Image.open(path).convert("L"), dtype=float)
    assert pixels.std() > 10


def _lens_cards(browser, gallery="lenses"):
    return browser.find_elements("css selector", f"[data-gallery={gallery}] .card")


def _reload(browser, timeout=20):
    """Reload the page; its lens cards once the page's scripts have run."""
    browser.refresh()
    deadline = time.time() + timeout
    while time.time() < deadline:
        loaded = "document.getElementById('grades-export') !== null"
        if browser.execute_script(f"return document.readyState === 'complete' && {loaded}"):
            cards = _lens_cards(browser)
            if cards:
                return cards
        time.sleep(0.2)
    raise AssertionError("the page did not load again")


def _downloaded(folder, name, timeout=10):
    deadline = time.time() + timeout
    path = folder / name
    while time.time() < deadline:
        if path.exists() and path.stat().st_size and not list(folder.glob("*.crdownload")):
            return path
        time.sleep(0.1)
    raise AssertionError(f"no download {name} in {folder}: {os.listdir(folder)}")


def test_grading_three_cards_and_exporting_gives_the_csv(browser, run, tmp_path):
    from astropy.table import Table

    from astrounsup.catalog import read_grades

    browser.execute_script("localStorage.clear();")
    downloads = {"behavior": "allow", "downloadPath": os.fspath(tmp_path)}
    browser.execute_cdp_cmd("Browser.setDownloadBehavior", downloads)
    cards = _reload(browser)
    ids = [c.get_attribute("data-id") for c in cards[:3]]
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", cards[0])
    cards[0].click()
    active = browser.switch_to.active_element
    for key in "lnu":  # each grade moves the focus to the next card
        browser.switch_to.active_element.send_keys(key)
    assert active.get_attribute("data-id") == ids[0]
    assert [c.get_attribute("data-grade") for c in cards[:4]] == ["lens", "not", "unsure", None]
    # The same object elsewhere on the page shows its grade too.
    same = browser.find_elements("css selector", f'.card[data-id="{ids[0]}"]'
                                 '[data-grade-kind="lens"]')  # fmt: skip
    assert all(c.get_attribute("data-grade") == "lens" for c in same)
    # A lens key on an anomaly card grades nothing; its own key does.
    anomaly = _lens_cards(browser, "anomalies")[0]
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", anomaly)
    anomaly.click()
    browser.switch_to.active_element.send_keys("l")
    assert anomaly.get_attribute("data-grade") is None
    anomaly.click()
    browser.switch_to.active_element.send_keys("a")
    assert anomaly.get_attribute("data-grade") == "anomaly"
    browser.find_element("id", "export-csv").click()
    path = _downloaded(tmp_path, "grades.csv")
    lines = path.read_text().splitlines()
    assert lines[0] == "object_id,grade,kind,time,run"
    rows = [line.split(",") for line in lines[1:]]
    # Each grade names the set of objects it was made on.
    from astrounsup.catalog import run_id
    from astrounsup.io import read_store

    assert {r[4] for r in rows} == {run_id(read_store(run["store"])[1])}
    assert [r[:3] for r in rows] == [
        [ids[0], "lens", "lens"], [ids[1], "not", "lens"], [ids[2], "unsure", "lens"],
        [anomaly.get_attribute("data-id"), "anomaly", "anomaly"],
    ]  # fmt: skip
    times = [r[3] for r in rows]
    assert times == sorted(times)
    assert len(read_grades(path)) == 4
    browser.find_element("id", "export-ecsv").click()
    ecsv = Table.read(_downloaded(tmp_path, "grades.ecsv"), format="ascii.ecsv")
    assert list(ecsv["object_id"]) == [r[0] for r in rows]
    # Kept in localStorage: a reload shows them again; X clears one.
    cards = _reload(browser)
    assert [c.get_attribute("data-grade") for c in cards[:3]] == ["lens", "not", "unsure"]
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", cards[1])
    cards[1].click()
    browser.switch_to.active_element.send_keys("x")
    assert cards[1].get_attribute("data-grade") is None
    assert "lens not" not in browser.find_element("id", "grade-counts").text
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    browser.execute_script("localStorage.clear();")


def test_ids_a_spreadsheet_would_run_as_formulas_are_exported_escaped(browser, tmp_path):
    from astrounsup.catalog import read_grades

    downloads = {"behavior": "allow", "downloadPath": os.fspath(tmp_path)}
    browser.execute_cdp_cmd("Browser.setDownloadBehavior", downloads)
    key = browser.execute_script(
        "return 'astrounsup-grades:' + JSON.parse("
        "document.getElementById('report-data').textContent).run_id;"
    )
    kept = {f"lens|{i}": {"object_id": i, "grade": "not", "kind": "lens",
                          "time": "2026-12-01T20:00:00.000Z"}
            for i in ("=HYPERLINK(1)", "+1", "-2", "@SUM(A1)", "plain")}  # fmt: skip
    browser.execute_script("localStorage.setItem(arguments[0], arguments[1]);", key,
                           json.dumps(kept))  # fmt: skip
    _reload(browser)
    browser.find_element("id", "export-csv").click()
    path = _downloaded(tmp_path, "grades.csv")
    ids = [line.split(",")[0] for line in path.read_text().splitlines()[1:]]
    assert sorted(ids) == ["'+1", "'-2", "'=HYPERLINK(1)", "'@SUM(A1)", "plain"]
    assert sorted(read_grades(path)["object_id"]) == ["+1", "-2", "=HYPERLINK(1)", "@SUM(A1)",
                                                      "plain"]  # fmt: skip
    browser.execute_script("localStorage.clear();")


def test_probabilities_near_one_keep_their_digits_and_ranks_say_of_how_many(run):
    from astrounsup.report.page import _of, _probability

    assert _probability(np.float64(0.9987)) == "0.9987"
    assert _probability(0.99999) == "0.999990"
    assert _probability(0.99991) != _probability(0.99992)
    assert _probability(0.123456) == "0.123"
    assert _probability(1.0) == "> 0.999999999"
    assert _probability(np.nan) is None
    assert _of(np.array([3, 1]), 40).tolist() == ["3 of 40", "1 of 40"]
    text = run["page"].read_text()
    assert f"lens rank 1 of {N}" in text
    assert f"anomaly rank 1 of {N}" in text


def test_a_card_enlarges_with_each_band_and_its_file(browser, run):
    from selenium.webdriver.common.keys import Keys

    card = browser.find_element("css selector", "[data-gallery=anomalies] .card")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", card)
    card.find_element("css selector", "img").click()
    zoom = browser.find_element("id", "zoom")
    assert zoom.is_displayed()
    row = card.get_attribute("data-row")
    state = (
        "const b = document.getElementById('zoom-bands');"
        "const c = document.getElementById('zoom-rgb');"
        "return [b.complete && b.naturalWidth, c.complete && c.naturalWidth,"
        " b.getAttribute('src'), c.getBoundingClientRect().width];"
    )
    loaded = browser.execute_script(state)
    deadline = time.time() + 5
    while time.time() < deadline and not loaded[0]:
        time.sleep(0.1)
        loaded = browser.execute_script(state)
    # Three bands of 64 px at zoom 3, 4 px apart; the picture enlarged to 384 px.
    assert loaded[0] == 3 * 192 + 2 * 4
    assert loaded[2] == f"bands/{row}.png"
    assert loaded[3] == 384
    text = browser.find_element("id", "zoom-text").text
    card_id = card.get_attribute("data-id")
    assert text == f"{card_id} \u00b7 file: cutouts/{card_id}.fits"
    # The card keeps the focus: Esc closes; V opens and closes again.
    card.send_keys(Keys.ESCAPE)
    assert not zoom.is_displayed()
    card.send_keys("v")
    assert zoom.is_displayed()
    card.send_keys("v")
    assert not zoom.is_displayed()
