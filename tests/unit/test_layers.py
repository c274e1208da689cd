"""The package's floors (docs/ARCHITECTURE.md): no module imports from a floor above its own, nor
from a room beside it on its floor, and no two modules import each other, directly or round about.
Imports inside functions count too: they are how a cycle hides."""

from __future__ import annotations

import ast
from pathlib import Path

from reelscope import generated_docs

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "reelscope"
# The floors, bottom up; a room is a top-level module or a subpackage of reelscope.
FLOORS = [
    {"reelscope", "errors", "status", "settings", "artifacts", "store", "definition", "models", "packaged", "heap",
     "progress", "pinned"},
    {"analysis", "access", "integrity"},
    {"search", "synth", "generated_docs"},
    {"cloud"},
    {"local"},
    {"cli"},
]


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The package's modules that `path` imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("reelscope"):
            for alias in node.names:
                name = f"{node.module}.{alias.name}"
                found.add(name if name in known else node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("reelscope")}
    return {name for name in found if name in known}


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "reelscope"


def floor(module: str) -> int:
    return next(i for i, rooms in enumerate(FLOORS) if room(module) in rooms)


def test_every_room_is_on_a_floor():
    assert {room(m) for m in modules()} == set().union(*FLOORS)


def test_no_module_imports_from_above_or_beside():
    known = modules()
    wrong = [f"{m} -> {d}" for m, path in known.items() for d in imports(path, known)
             if floor(d) > floor(m) or (floor(d) == floor(m) and floor(m) > 0 and room(d) != room(m))]
    assert wrong == []


def test_no_import_cycles():
    known = modules()
    graph = {m: imports(path, known) - {m} for m, path in known.items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(module: str, trail: list[str]) -> None:
        state[module] = 1
        for after in sorted(graph[module]):
            if state.get(after) == 1:
                cycles.append(trail[trail.index(after):] + [module, after])
            elif after not in state:
                visit(after, trail + [module])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [])
    assert cycles == []


def test_the_docs_made_from_the_code_are_not_stale():
    """README's Configuration table is Settings; docs/ARCHITECTURE.md's drawing is the ASL file."""
    assert generated_docs.stale() == [], "run `reelscope docs`"
