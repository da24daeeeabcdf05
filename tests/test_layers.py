"""The package's modules import one another without cycles, the shared pieces (the
instrument, the noise model) import nothing above them, and package imports sit at the top
of a module except where the command line's help must not load PyTorch."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "astrounsup"


def _modules():
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _lazy_homes(path):
    """Name -> submodule of a package whose ``__init__`` re-exports lazily
    (``attach(__name__, {module: names})``); empty for any other ``__init__``."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "attach":
            exports = ast.literal_eval(node.args[1])
            return {name: module for module, names in exports.items() for name in names}
    return {}


def _imports(modules):
    """Module -> the astrounsup modules it imports (anywhere in it, functions included); a
    name imported from a lazily re-exporting package counts as its home module's."""

    def owner(name):
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name

    homes = {m: _lazy_homes(p) for m, p in modules.items() if p.name == "__init__.py"}

    def resolved(module, name):
        home = homes.get(module, {}).get(name)
        return f"{module}.{home}" if home else owner(f"{module}.{name}")

    graph = {}
    for name, path in modules.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("astrounsup"):
                deps |= {resolved(node.module, a.name) for a in node.names}
            elif isinstance(node, ast.Import):
                deps |= {owner(a.name) for a in node.names if a.name.startswith("astrounsup")}
        graph[name] = {d for d in deps if d and d != name and modules[d].name != "__init__.py"}
    return graph


def _cycle(graph):
    """One import cycle as a list of modules, or None."""
    state, path = {}, []

    def visit(v):
        state[v] = "open"
        path.append(v)
        for w in sorted(graph.get(v, ())):
            if state.get(w) == "open":
                return [*path[path.index(w) :], w]
            if w not in state and (found := visit(w)):
                return found
        state[v] = "done"
        path.pop()
        return None

    for v in sorted(graph):
        if v not in state and (found := visit(v)):
            return found
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle():
    assert _cycle(_imports(_modules())) is None


@pytest.mark.parametrize("module", ["astrounsup.instrument", "astrounsup.noise"])
def test_shared_pieces_import_nothing_above_them(module):
    graph = _imports(_modules())
    above = (
        "astrounsup.io",
        "astrounsup.transforms",
        "astrounsup.models",
        "astrounsup.simulate",
        "astrounsup.features",
    )
    assert not [d for d in graph[module] if d.startswith(above)]


#: Modules the command line's help reads (recipes, step defaults) that import what loads
#: PyTorch inside the functions that need it (tests/cli/test_main.py checks the help).
DEFERRED = {"astrounsup.training.recipes", "astrounsup.pipeline.anomalies",
            "astrounsup.pipeline.features", "astrounsup.plotting.colour"}  # fmt: skip


def _imports_in_functions(path):
    """Line numbers of astrounsup imports inside functions."""
    lines = []

    def visit(node, inside):
        for child in ast.iter_child_nodes(node):
            if inside and isinstance(child, (ast.Import, ast.ImportFrom)):
                names = [child.module or ""] if isinstance(child, ast.ImportFrom) else [
                    a.name for a in child.names]  # fmt: skip
                if any(n.startswith("astrounsup") for n in names):
                    lines.append(child.lineno)
            visit(child, inside or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)))

    visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return lines


def test_package_imports_sit_at_the_top():
    late = {name: _imports_in_functions(path) for name, path in _modules().items()
            if not name.startswith("astrounsup.cli") and name not in DEFERRED}  # fmt: skip
    assert not {name: lines for name, lines in late.items() if lines}


def test_the_lazy_homes_are_read():
    homes = _lazy_homes(PACKAGE / "latent" / "__init__.py")
    assert homes["read_latents"] == "latents_file"
    graph = _imports(_modules())
    assert "astrounsup.latent.latents_file" in graph["astrounsup.pipeline.embed"]


def test_the_physics_features_sit_beside_the_models():
    """astrounsup.features reads pixels with the instrument and noise pieces only: no model,
    training or latent analysis (they are measured without training)."""
    graph = _imports(_modules())
    deps = {d for m, ds in graph.items() if m.startswith("astrounsup.features") for d in ds
            if not d.startswith("astrounsup.features")}  # fmt: skip
    assert deps <= {
        "astrounsup._estimators",
        "astrounsup._lazy",
        "astrounsup.instrument",
        "astrounsup.noise",
    }
