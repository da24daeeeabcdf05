"""Sphinx extension of the astrounsup documentation.

- The API reference (``docs/api/``) is written at every build from each subpackage's
  ``__all__``: one page per subpackage, its names grouped by the submodule that defines
  them; functions and classes through autosummary, constants as ``py:data`` with their
  ``#:`` comment and value.
- ``.. astrounsup-config::`` renders every training setting of every recipe, with its
  default and meaning, from :func:`astrounsup.training.describe_config`;
  ``.. astrounsup-steps::`` the settings of the pipeline's steps, from their defaults and
  the help of the command option of the same name; ``.. astrounsup-commands::`` every
  command's ``--help``.
- Intersphinx inventories that cannot be reached (a machine without internet) are left out
  with a message instead of failing the build; references to those projects then render as
  plain text (nitpicky checks only astrounsup's own references).
"""

from __future__ import annotations

import importlib
import pkgutil
import pprint
import socket
import textwrap
from pathlib import Path
from urllib.parse import urlsplit

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.pycode import ModuleAnalyzer
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

logger = logging.getLogger(__name__)

#: The documented public modules, in the order of the data flow.
PUBLIC_MODULES = (
    "astrounsup.instrument",
    "astrounsup.noise",
    "astrounsup.simulate",
    "astrounsup.io",
    "astrounsup.transforms",
    "astrounsup.transforms.functional",
    "astrounsup.features",
    "astrounsup.models",
    "astrounsup.losses",
    "astrounsup.training",
    "astrounsup.latent",
    "astrounsup.stars",
    "astrounsup.catalog",
    "astrounsup.plotting",
    "astrounsup.report",
    "astrounsup.pipeline",
    "astrounsup.cli",
)

_VALUE_WIDTH = 80
_VALUE_LINES = 12


def _modules_of(package):
    """``package`` and every module in it (private ones too, not ``__main__``)."""
    found = [package]
    if hasattr(package, "__path__"):
        found += [
            importlib.import_module(f"{package.__name__}.{info.name}")
            for info in pkgutil.iter_modules(package.__path__)
            if info.name != "__main__"
        ]
    return found


def _home(package, name, modules):
    """The module that defines public name ``name`` of ``package``: a function's or class's
    ``__module__``, or the module holding a constant's ``#:`` comment."""
    value = getattr(package, name)
    if callable(value):
        return importlib.import_module(value.__module__)
    for module in reversed(modules):  # submodules before the package that imports them
        if ("", name) in ModuleAnalyzer.for_module(module.__name__).find_attr_docs():
            return module
    msg = f"{package.__name__}.{name}: a public constant needs a '#:' comment where it is set"
    raise ValueError(msg)


def _title(module):
    """A heading: the first sentence of ``module``'s docstring, up to ": " if short."""
    first = (module.__doc__ or module.__name__).strip().split("\n\n")[0]
    first = " ".join(first.split())
    for sep in (": ", ". "):
        head, found, _ = first.partition(sep)
        if found and len(head) <= 70:
            return head.rstrip(".")
    return first.rstrip(".")


def _heading(text, char):
    return [text, char * len(text), ""]


def _constant_lines(home, name, value):
    comment = ModuleAnalyzer.for_module(home.__name__).find_attr_docs()[("", name)]
    shown = pprint.pformat(value, width=_VALUE_WIDTH, compact=True, sort_dicts=False)
    shown = shown.splitlines()
    if len(shown) > _VALUE_LINES:
        shown = [*shown[:_VALUE_LINES], "..."]
    return [
        f".. py:data:: {name}",
        "",
        *("   " + line for line in comment),
        "",
        "   .. code-block:: python",
        "",
        *("      " + line for line in shown),
        "",
    ]


def module_page(qualname):
    """The reST text of the API page of public module ``qualname``."""
    package = importlib.import_module(qualname)
    names = list(package.__all__)
    modules = _modules_of(package)
    groups = {}
    for name in names:
        groups.setdefault(_home(package, name, modules), []).append(name)
    lines = [
        *_heading(f"``{qualname}``", "="),
        f".. automodule:: {qualname}",
        "   :no-members:",
        "",
        f".. currentmodule:: {qualname}",
        "",
    ]
    order = {module.__name__: i for i, module in enumerate(modules)}
    for home, members in sorted(
        groups.items(), key=lambda item: order.get(item[0].__name__, len(order))
    ):
        if home is not package:
            # The submodule's docstring leads its names; its module target lets a
            # docstring refer to it (``:mod:`astrounsup.io.shards```).
            lines += _heading(_title(home), "-")
            # A name re-exported from another package: that package's page indexes it.
            inside = home.__name__.startswith(f"{qualname}.")
            lines += [
                f".. automodule:: {home.__name__}",
                "   :no-members:",
                *(() if inside else ("   :no-index:",)),
                "",
            ]
            lines += [f".. currentmodule:: {qualname}", ""]
        documented = [n for n in members if callable(getattr(package, n))]
        constants = [n for n in members if n not in documented]
        if documented:
            lines += [".. autosummary::", "   :toctree: generated/", ""]
            lines += [f"   {n}" for n in documented] + [""]
        for name in constants:
            lines += _constant_lines(home, name, getattr(package, name))
    return "\n".join(lines) + "\n"


def index_page():
    lines = [
        *_heading("API reference", "="),
        "Every public name of every subpackage, from its docstring. Each subpackage",
        "exports its names at the top (``from astrounsup.latent import LatentClusterer``).",
        "",
        ".. toctree::",
        "   :maxdepth: 1",
        "",
    ]
    lines += [f"   {qualname.removeprefix('astrounsup.')}" for qualname in PUBLIC_MODULES]
    return "\n".join(lines) + "\n"


def _write_if_changed(path, text):
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def write_api_pages(app, config):
    out = Path(app.srcdir) / "api"
    out.mkdir(exist_ok=True)
    expected = {"index.rst"}
    _write_if_changed(out / "index.rst", index_page())
    for qualname in PUBLIC_MODULES:
        name = f"{qualname.removeprefix('astrounsup.')}.rst"
        expected.add(name)
        _write_if_changed(out / name, module_page(qualname))
    for stale in out.glob("*.rst"):
        if stale.name not in expected:
            stale.unlink()


def _reachable(url, timeout=2.0):
    parts = urlsplit(url)
    if parts.scheme == "file" or not parts.scheme:
        return Path(parts.path).exists()
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def drop_unreachable_inventories(app, config):
    kept = {}
    for key, (target, inventory) in config.intersphinx_mapping.items():
        if _reachable(inventory or target):
            kept[key] = (target, inventory)
        else:
            logger.info(
                "intersphinx: %s (%s) cannot be reached; its links are left out", key, target
            )
    config.intersphinx_mapping = kept


def _toml(value):
    if value is None:
        return "(not set)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value)


def _table(title, rows):
    lines = [
        f".. list-table:: {title}",
        "   :header-rows: 1",
        "   :widths: 18 14 68",
        "",
        "   * - key",
        "     - default",
        "     - meaning",
    ]
    for key, default, meaning in rows:
        lines += [
            f"   * - ``{key}``",
            f"     - ``{_toml(default)}``",
            *textwrap.wrap(meaning, 80, initial_indent="     - ", subsequent_indent="       "),
        ]
    return [*lines, ""]


def _parsed(directive, lines, source):
    """The nodes of reST ``lines`` (headings included) at ``directive``'s place."""
    node = nodes.section()
    node.document = directive.state.document
    nested_parse_with_titles(directive.state, StringList(lines, source=source), node)
    return node.children


class ConfigReference(SphinxDirective):
    """Every setting of every training recipe: one table for the sections all recipes
    share, one per recipe for the rest."""

    has_content = False

    def run(self):
        from astrounsup.training import MODELS, describe_config

        described = {model: describe_config(model) for model in MODELS}
        sections = list(dict.fromkeys(s for rows in described.values() for s, *_ in rows))
        lines = []
        for section in sections:
            per_model = {
                model: [
                    (key, default, meaning) for s, key, default, meaning in rows if s == section
                ]
                for model, rows in described.items()
            }
            distinct = {tuple(map(repr, rows)) for rows in per_model.values()}
            lines += _heading(f"``[{section}]``", "~")
            if len(distinct) == 1:
                lines += _table(f"``[{section}]`` of every recipe", next(iter(per_model.values())))
                continue
            for model, rows in per_model.items():
                lines += _heading(f"``--model {model}``", "^")
                lines += _table(f"``[{section}]`` of ``--model {model}``", rows)
        return _parsed(self, lines, "astrounsup-config")


def skip_foreign_members(app, what, name, obj, skip, options):
    """Leave out members a class gets from another library (scikit-learn's
    ``set_*_request``, ``torch.nn.Module``'s): their docs are that library's."""
    module = getattr(obj, "__module__", None) or ""
    if what == "class" and callable(obj) and not module.startswith("astrounsup"):
        return True
    return None


#: Pipeline sections whose keys are the options of an ``astrounsup`` command:
#: section -> (command, its defaults and its function in astrounsup.pipeline).
STEP_SECTIONS = {
    "cluster": ("cluster", "CLUSTER_DEFAULTS", "cluster_latents"),
    "anomalies": ("anomalies", "ANOMALY_DEFAULTS", "score_anomalies"),
    "reduce": ("reduce", "REDUCE_DEFAULTS", "reduce_features"),
    "similar": ("similar", "SIMILAR_DEFAULTS", "find_similar"),
}


def _command_help():
    """Command -> (its argparse sub-parser, its ``--help``), every command's options built."""
    import os
    from unittest import mock

    from astrounsup.cli import _parser

    # argparse wraps the help to the terminal's width: the same on every machine.
    with mock.patch.dict(os.environ, {"COLUMNS": "90"}):
        parser = _parser("*")
        choices = next(a for a in parser._actions if a.dest == "command").choices
        return {name: (sub, sub.format_help()) for name, sub in choices.items()}


def _plain_text(text):
    """``text`` escaped for reST: an option's help is plain text, not markup."""
    text = text.replace("\\", "\\\\")
    for char in "*`|_":
        text = text.replace(char, "\\" + char)
    return text


class StepConfigReference(SphinxDirective):
    """The settings of each pipeline step: its defaults (``astrounsup.pipeline``) with the
    help of the command-line option of the same name."""

    has_content = False

    def run(self):
        import astrounsup.pipeline as pipeline

        commands = _command_help()
        lines = []
        for section, (command, defaults_name, function) in STEP_SECTIONS.items():
            helps = {a.dest: a.help for a in commands[command][0]._actions}
            rows = []
            for key, default in getattr(pipeline, defaults_name).items():
                if not helps.get(key):
                    msg = f"astrounsup {command}: no option documents the setting {key!r}"
                    raise self.error(msg)
                rows.append((key, default, _plain_text(helps[key])))
            lines += _heading(f"``[{section}]``", "~")
            lines += [
                f"The settings of :func:`astrounsup.pipeline.{function}`"
                f" (:data:`astrounsup.pipeline.{defaults_name}`), each the option of"
                f" ``astrounsup {command}`` with the same name (``{rows[0][0]}``:"
                f" ``--{rows[0][0].replace('_', '-')}``).",
                "",
                *_table(f"``[{section}]``", rows),
            ]
        return _parsed(self, lines, "astrounsup-steps")


class CommandReference(SphinxDirective):
    """Every ``astrounsup`` command with its ``--help``."""

    has_content = False

    def run(self):
        from astrounsup.cli import COMMANDS

        commands = _command_help()
        lines = []
        for name, (_module, text) in COMMANDS.items():
            lines += _heading(f"``astrounsup {name}``", "-")
            lines += [text[0].upper() + text[1:] + ".", "", ".. code-block:: text", ""]
            lines += ["   " + line for line in commands[name][1].splitlines()]
            lines += [""]
        return _parsed(self, lines, "astrounsup-cli")


def write_tutorial_notebooks(app, config):
    """Each tutorial (a MyST markdown notebook) also as a Jupyter notebook, served at
    ``notebooks/<name>.ipynb`` of the site (linked from the tutorials' index), written
    in a temporary folder of this source tree (neither among the sources nor in the
    output, where Sphinx refuses an extra path)."""
    import hashlib
    import tempfile

    import nbformat
    from myst_nb.core.read import read_myst_markdown_notebook

    tag = hashlib.sha1(str(Path(app.srcdir).resolve()).encode()).hexdigest()[:12]
    folder = Path(tempfile.gettempdir()) / f"astrounsup-docs-notebooks-{tag}"
    target = folder / "notebooks"
    target.mkdir(parents=True, exist_ok=True)
    for page in sorted((Path(app.srcdir) / "tutorials").glob("*.md")):
        notebook = read_myst_markdown_notebook(page.read_text())
        nbformat.validate(notebook)
        nbformat.write(notebook, target / f"{page.stem}.ipynb")
    config.html_extra_path = [*config.html_extra_path, str(folder)]


def setup(app):
    app.connect("config-inited", drop_unreachable_inventories)
    app.connect("config-inited", write_tutorial_notebooks)
    # At config-inited: before Sphinx looks for source files and autosummary for stubs.
    app.connect("config-inited", write_api_pages)
    app.connect("autodoc-skip-member", skip_foreign_members)
    app.add_directive("astrounsup-config", ConfigReference)
    app.add_directive("astrounsup-steps", StepConfigReference)
    app.add_directive("astrounsup-commands", CommandReference)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
