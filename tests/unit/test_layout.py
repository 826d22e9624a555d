"""The layout keeps its layers: who may import whom, no import cycles, no private names across modules.

Layers (each a node of the import graph):

- ``runtime``: the top-level modules of ``fewshot`` a user's identification runs on;
- ``live``: ``fewshot/live`` (the demo), built on the runtime;
- ``train`` and ``eval``: ``fewshot/train`` and ``fewshot/eval``, built on the runtime;
- ``cli``: ``fewshot/cli.py``, the command line front end of every layer;
- ``data_tools``: the corpus builder, built on the runtime.

Imports are read from the source (every ``import`` statement, inside
functions too), so a lazy import counts like any other. A module holds one
concept, whatever its length: what it is is checked by the graph, not by a
line count.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("fewshot", "data_tools")


def modules():
    """``{dotted name: path}`` of every module of the two packages."""
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def imports_of(name: str, path: Path) -> set[str]:
    """Dotted names of the project modules that ``name`` imports."""
    is_pkg = path.name == "__init__.py"
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.add(mod)
            out |= {f"{mod}.{a.name}" for a in node.names}
    known = modules()
    return {m for m in out if m in known}


def layer(name: str) -> str:
    parts = name.split(".")
    if parts[0] == "data_tools":
        return "data_tools"
    if len(parts) > 1 and parts[1] in ("train", "eval", "live"):
        return parts[1]
    if name == "fewshot.cli":
        return "cli"
    return "runtime"


@pytest.fixture(scope="module")
def graph():
    return {name: imports_of(name, path) for name, path in modules().items()}


def test_the_scanner_sees_lazy_and_relative_imports(graph):
    assert "fewshot.eval.protocol" in graph["fewshot.train.validation"]  # a relative import inside a method
    assert "fewshot.model.extractor" in graph["fewshot.identifier"]  # imported inside __init__


def test_fewshot_never_imports_data_tools(graph):
    offenders = {
        m: sorted(i for i in imp if i.startswith("data_tools")) for m, imp in graph.items() if m.startswith("fewshot")
    }
    assert not {m: i for m, i in offenders.items() if i}


def test_runtime_and_live_never_import_train_or_eval(graph):
    offenders = {
        m: sorted(i for i in imp if layer(i) in ("train", "eval"))
        for m, imp in graph.items()
        if layer(m) in ("runtime", "live")
    }
    assert not {m: i for m, i in offenders.items() if i}


def test_ray_stays_on_the_data_side(graph):
    """Ray (the ``data`` extra) is reached only through ``fewshot.cluster``, never by identification or the demo."""
    importers = set()
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and not node.level
                else []
            )
            if any(n.split(".")[0] == "ray" for n in names):
                importers.add(name)
    assert "fewshot.cluster" in importers
    assert not {m for m in importers if layer(m) in ("runtime", "live", "cli") and m != "fewshot.cluster"}
    users = {m for m, imp in graph.items() if "fewshot.cluster" in imp}
    assert users and not {m for m in users if layer(m) in ("runtime", "live", "cli")}


def test_no_import_cycle_between_layers(graph):
    edges = {}
    for m, imp in graph.items():
        for i in imp:
            if layer(i) != layer(m):
                edges.setdefault(layer(m), set()).add(layer(i))
    seen, stack = set(), []

    def visit(node):
        if node in stack:
            raise AssertionError(f"import cycle between layers: {' -> '.join(stack[stack.index(node) :] + [node])}")
        if node in seen:
            return
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            visit(nxt)
        stack.pop()
        seen.add(node)

    for node in sorted(edges):
        visit(node)


def import_cycles(graph) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w == v or w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_a_cycle():
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_between_modules(graph):
    assert not import_cycles(graph)


def package(name: str) -> str:
    """The sub-package a module belongs to (``fewshot.model.extractor``: ``fewshot.model``), or the module itself."""
    parts = name.split(".")
    is_pkg = modules()[name].name == "__init__.py"
    return ".".join(parts[:2]) if len(parts) > 2 or (len(parts) == 2 and is_pkg) else name


def test_no_import_cycle_between_sub_packages(graph):
    """``audio``, ``model``, ``groups``, ``store``, ``turns``... depend on each other one way only, so each can be
    read (and tested) with only what it builds on."""
    edges: dict[str, set[str]] = {}
    for m, imp in graph.items():
        edges.setdefault(package(m), set()).update(package(i) for i in imp if package(i) != package(m))
    assert edges["fewshot.model"] and edges["fewshot.groups"]  # the scanner sees the sub-packages' imports
    assert not import_cycles(edges)


def private_imports() -> list[str]:
    """``module imports other.name`` for every name with one leading underscore imported from another module."""
    out = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom):
                out += [
                    f"{name} imports {node.module}.{a.name}"
                    for a in node.names
                    if a.name.startswith("_") and not a.name.startswith("__")
                ]
    return out


def test_no_private_name_is_imported_across_modules():
    assert not private_imports()


def test_scripts_and_demo_do_not_edit_sys_path():
    files = list((ROOT / "scripts").glob("*.py")) + list((ROOT / "demo").glob("*.py"))
    assert files
    assert not [str(f.relative_to(ROOT)) for f in files if "sys.path" in f.read_text()]
