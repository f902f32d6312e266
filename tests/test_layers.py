"""The import rules of docs/architecture.md, checked over the source: api -> bridge -> smpp, and
no cycle between the packages of one layer (a module may import its own package's modules)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("api", "bridge", "smpp")  # each may import only the ones after it


def _modules() -> dict[str, Path]:
    found = {}
    for top in LAYERS:
        for path in (ROOT / top).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {name for name in out if name.split(".")[0] in LAYERS}


def _package(module: str) -> str:
    """The unit of the no-cycle rule: the first two parts (bridge.delivery, smpp.codec); a
    top-level module of a layer (bridge.service, bridge.errors) is its own unit."""
    return ".".join(module.split(".")[:2])


MODULES = _modules()
EDGES = {name: {_package(i) for i in _imports(path)} for name, path in MODULES.items()}


def test_imports_point_one_way_between_layers():
    wrong = []
    for name, deps in EDGES.items():
        layer = LAYERS.index(name.split(".")[0])
        for dep in deps:
            if LAYERS.index(dep.split(".")[0]) < layer:
                wrong.append(f"{name} imports {dep}")
    assert not wrong, "imports must point api -> bridge -> smpp:\n" + "\n".join(sorted(wrong))


def test_no_cycles_between_packages():
    graph: dict[str, set[str]] = {}
    for name, deps in EDGES.items():
        graph.setdefault(_package(name), set()).update(d for d in deps if d != _package(name))
    cycles = []

    def visit(node: str, trail: list[str]) -> None:
        for nxt in sorted(graph.get(node, ())):
            if nxt in trail:
                cycles.append(" -> ".join([*trail[trail.index(nxt) :], nxt]))
            elif len(trail) < 12:
                visit(nxt, [*trail, nxt])

    for start in sorted(graph):
        visit(start, [start])
    unique = sorted({min(c.split(" -> ")[:-1]) + ": " + c for c in cycles})
    assert not unique, "packages import each other in a cycle:\n" + "\n".join(unique)


@pytest.mark.parametrize("package", sorted({_package(m) for m in MODULES if m.count(".") >= 1}))
def test_every_package_is_documented_in_the_map(package):
    if (ROOT / package.replace(".", "/")).is_dir():
        assert f"`{package}`" in (ROOT / "docs" / "architecture.md").read_text()
