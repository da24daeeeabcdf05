"""The documentation site: built with warnings as errors, every public name in its API
reference, every tutorial executed, no page about the project's own history.

The build (``python -m sphinx -W -n``, about a minute and a half on 2 cores, the tutorials
included) starts in the background as soon as the suite is collected
(:func:`start_build`, called from ``tests/conftest.py``) and these tests wait for it.
"""

from __future__ import annotations

import html
import importlib
import importlib.util
import pkgutil
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
BUILD_TIMEOUT_S = 900
#: What the build needs (the ``docs`` extra).
REQUIRED = ("sphinx", "numpydoc", "myst_nb", "pydata_sphinx_theme", "ipykernel")
#: Tutorials executed during the build (``cluster`` is shown, not run), with the figures
#: each draws.
EXECUTED = {"in_memory": 2, "own_fits": 1, "main_sequence": 2, "anomalies": 1}
HISTORY = re.compile(
    r"\b(issues? ?#?\d*|wave \d|(resolution|closing|progress) notes?|notes? \d|"
    r"session|previously|used to be|formerly|nowadays)\b",
    re.IGNORECASE,
)


def missing_requirements():
    return [name for name in REQUIRED if importlib.util.find_spec(name) is None]


def start_build():
    """Start ``sphinx -W -n -b html docs OUT`` in the background; ``(process, OUT, log)``,
    or None without the ``docs`` extra."""
    if missing_requirements():
        return None
    out = Path(tempfile.mkdtemp(prefix="astrounsup-docs-"))
    log = open(out / "build.log", "w+")  # noqa: SIM115 - read back once the build ends
    process = subprocess.Popen(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-q", "-b", "html",
         "-d", str(out / "doctrees"), str(DOCS), str(out / "html")],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    return process, out, log


@pytest.fixture(scope="module")
def site(request):
    missing = missing_requirements()
    if missing:
        pytest.skip(f"the docs extra is not installed ({', '.join(missing)} missing)")
    build = getattr(request.config, "_astrounsup_docs_build", None) or start_build()
    process, out, log = build
    try:
        process.wait(timeout=BUILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"the docs build took more than {BUILD_TIMEOUT_S} s")
    log.seek(0)
    text = log.read()
    log.close()
    # The kernel's own notice about its local TCP transport is no warning of the build.
    problems = [
        line
        for line in text.splitlines()
        if re.search(r"WARNING|ERROR|Error|Traceback", line) and "IPKernelApp" not in line
    ]
    assert process.returncode == 0, text[-4000:]
    assert not problems, "\n".join(problems[:20])
    return out / "html"


def _page_text(path):
    page = re.sub(r"<script.*?</script>|<style.*?</style>", " ", path.read_text(), flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def _public_modules():
    """The public top-level modules (``astrounsup.instrument``, ``astrounsup.noise``) and
    every subpackage of astrounsup."""
    import astrounsup

    found = ["astrounsup.instrument", "astrounsup.noise"]
    for info in pkgutil.iter_modules(astrounsup.__path__):
        if info.ispkg and not info.name.startswith("_"):
            found.append(f"astrounsup.{info.name}")
    return found


def test_every_public_name_of_every_subpackage_is_in_the_api_reference(site):
    from sphinx.util.inventory import InventoryFile

    with open(site / "objects.inv", "rb") as f:
        inventory = InventoryFile.load(f, "", lambda base, uri: uri)
    documented = {name for objects in inventory.values() for name in objects}
    missing = []
    for qualname in [*_public_modules(), "astrounsup.transforms.functional"]:
        module = importlib.import_module(qualname)
        missing += [
            f"{qualname}.{n}" for n in module.__all__ if f"{qualname}.{n}" not in documented
        ]
    assert not missing, missing
    assert "astrounsup.latent.LatentClusterer.fit" in documented  # methods too


def test_the_generated_pages_cover_every_subpackage():
    pytest.importorskip("sphinx", reason="the docs extra is not installed (sphinx missing)")
    sys.path.insert(0, str(DOCS / "_ext"))
    try:
        import astrounsup_docs
    finally:
        sys.path.remove(str(DOCS / "_ext"))
    assert set(_public_modules()) <= set(astrounsup_docs.PUBLIC_MODULES)


def test_every_tutorial_ran_during_the_build(site):
    for name, figures in EXECUTED.items():
        page = (site / "tutorials" / f"{name}.html").read_text()
        assert page.count('class="cell_output') >= 2, name
        assert "Traceback" not in page, name
        assert len(re.findall(r"<img [^>]*src=\"[^\"]+\.png\"", page)) >= figures, name
    assert 'class="cell_output' not in (site / "tutorials" / "cluster.html").read_text()


def test_the_configuration_page_lists_every_training_key_with_its_meaning(site):
    from astrounsup.training import MODELS, describe_config

    text = " ".join(_page_text(site / "configuration.html").split())
    for model in MODELS:
        for _section, key, _default, _meaning in describe_config(model):
            assert key in text, (model, key)
    assert "Peak learning rate of AdamW" in text
    assert "--model rotation" in text
    assert "stem of the score columns" in text  # a pipeline step's setting


def test_no_page_mentions_the_project_history(site):
    for path in sorted(site.rglob("*.html")):
        if path.name in ("genindex.html", "search.html", "py-modindex.html"):
            continue
        text = _page_text(path)
        found = [m.group(0) for m in HISTORY.finditer(text)]
        assert not found, (path.relative_to(site), found)


def test_the_history_check_finds_what_it_looks_for():
    for text in ("see issue 21", "the resolution note", "wave 1 built it", "as in note 3"):
        assert HISTORY.search(text), text
    assert not HISTORY.search("the tissue of a galaxy; a noted lens")


def test_the_readme_links_the_built_docs_and_says_how_to_build_them():
    readme = (ROOT / "README.md").read_text()
    first_command = readme.index("```bash")
    link = readme.index("docs/_build/html/index.html")
    assert link > first_command  # the two commands stay first
    assert "python -m sphinx -W -n -b html docs docs/_build/html" in readme


def test_only_other_projects_references_may_stay_unresolved():
    namespace = {"__file__": str(DOCS / "conf.py")}
    exec(compile((DOCS / "conf.py").read_text(), str(DOCS / "conf.py"), "exec"), namespace)
    ((kinds, pattern),) = namespace["nitpick_ignore_regex"]
    assert namespace["nitpicky"]
    assert re.fullmatch(kinds, "py:class")
    assert re.fullmatch(pattern, "numpy.ndarray")
    assert re.fullmatch(pattern, "torch.nn.Module")
    assert not re.fullmatch(pattern, "astrounsup.io.read_store")
    assert not re.fullmatch(pattern, "astrounsup")


def test_every_tutorial_downloads_as_a_notebook_linked_from_the_index(site):
    import nbformat

    index = (site / "tutorials" / "index.html").read_text()
    for page in sorted((DOCS / "tutorials").glob("*.md")):
        link = f"../notebooks/{page.stem}.ipynb"
        assert f'href="{link}"' in index, page.stem
        notebook = nbformat.read(site / "tutorials" / link, as_version=4)
        nbformat.validate(notebook)
        if page.stem != "cluster":  # shown, not run: its commands are shell lines
            assert any(c.cell_type == "code" for c in notebook.cells), page.stem


#: What runs out of its box on a page: headings, sidebar and breadcrumb entries.
_CLIPPED = """
const out = [];
const shown = 'h1, h2, h3, .bd-sidebar-primary a, .bd-sidebar-secondary a, .bd-breadcrumbs li';
for (const el of document.querySelectorAll(shown)) {
  const r = el.getBoundingClientRect();
  if (r.width === 0) continue;
  const box = el.closest('.bd-sidebar-primary, .bd-sidebar-secondary, article, .bd-breadcrumbs')
    || document.body;
  if (el.scrollWidth > el.clientWidth + 1 || r.right > box.getBoundingClientRect().right + 1)
    out.push(el.tagName + ' ' + el.textContent.trim().slice(0, 60));
}
return out;
"""


@pytest.mark.parametrize("width", [1100, 960])
def test_no_api_heading_or_navigation_entry_is_clipped(site, width):
    # In a real browser: a long module name in code (astrounsup.transforms.functional) ran
    # out of the sidebar, clipped.
    from tests.report.test_page import _chromium

    driver = _chromium()
    try:
        driver.set_window_size(width, 900)
        clipped = {}
        for page in sorted((site / "api").glob("*.html")):
            driver.get(page.as_uri())
            found = driver.execute_script(_CLIPPED)
            if found:
                clipped[page.name] = found[:3]
        assert not clipped, clipped
    finally:
        driver.quit()


def test_a_tutorial_names_its_section_once_in_the_breadcrumbs(site):
    from tests.report.test_page import _chromium

    driver = _chromium()
    try:
        driver.get((site / "tutorials" / "own_fits.html").as_uri())
        crumbs = driver.execute_script(
            "return Array.from(document.querySelectorAll('.bd-breadcrumbs li'),"
            " e => e.textContent.trim()).filter(t => t);"
        )
    finally:
        driver.quit()
    assert crumbs == ["Tutorials", "Your own FITS cutouts, from ingest to the report"]
