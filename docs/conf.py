"""Sphinx configuration of the astrounsup documentation.

Build (from the repository root, with the ``docs`` extra installed)::

    .venv/bin/python -m sphinx -W -n -b html docs docs/_build/html

The API reference pages are generated from each subpackage's ``__all__``, the
configuration tables from the code's defaults and docstrings, and the tutorials are
notebooks executed during the build.
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

import astrounsup  # noqa: E402

project = "astrounsup"
author = "astrounsup developers"
copyright = "astrounsup developers"
release = astrounsup.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_nb",
    "astrounsup_docs",
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb"}
exclude_patterns = ["_build", "**.ipynb_checkpoints", "README.md"]
templates_path = ["_templates"]
root_doc = "index"

# Warnings are errors (-W) and references are checked (-n): every reference to an
# astrounsup name must resolve. References to other projects resolve through
# intersphinx where their inventory is reachable and are not checked otherwise.
nitpicky = True
nitpick_ignore_regex = [(r"py:.*", r"^(?!astrounsup\b).*")]

autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"members": True}
autodoc_typehints = "none"
autodoc_member_order = "bysource"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
    "numpy": ("https://numpy.org/doc/stable/", None),
    "astropy": ("https://docs.astropy.org/en/stable/", None),
    "torch": ("https://docs.pytorch.org/docs/stable/", None),
    "sklearn": ("https://scikit-learn.org/stable/", None),
    "h5py": ("https://docs.h5py.org/en/stable/", None),
}
intersphinx_timeout = 5

# Notebooks: executed on every build, a failing cell fails the build.
nb_execution_mode = "force"
nb_execution_in_temp = True  # the files a tutorial writes stay out of the source tree
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "colon_fence"]

html_theme = "pydata_sphinx_theme"
html_title = f"astrounsup {release}"
html_theme_options = {"navigation_with_keys": False, "show_toc_level": 2}
html_static_path = ["_static"]
html_css_files = ["astrounsup.css"]
html_context = {"default_mode": "light"}
