"""The package's modules import one another without cycles, and the shared pieces (the
instrument, the noise model) import nothing above them."""

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


def _imports(modules):
    """Module -> the astrounsup modules it imports (anywhere in it, functions included);
    a package's ``__init__`` (lazy re-exports) stands for no module of its own."""

    def owner(name):
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name

    graph = {}
    for name, path in modules.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("astrounsup"):
                deps |= {owner(f"{node.module}.{a.name}") for a in node.names}
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
    above = ("astrounsup.io", "astrounsup.transforms", "astrounsup.models", "astrounsup.simulate")
    assert not [d for d in graph[module] if d.startswith(above)]
