"""The parts of the docs that are made from the code: README's Configuration table (from
Settings), docs/ARCHITECTURE.md's drawing of the state machine (from the ASL file) and
docs/SECURITY.md's table of who may call each route (from access/roles.py).
`reelscope docs` writes them; tests/unit/test_layers.py fails when one is stale."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from reelscope import definition, settings
from reelscope.access import roles

ROOT = Path(__file__).resolve().parents[2]
# (file, the line before the block, the line after it, what makes the block)
BLOCKS: list[tuple[Path, str, str, Callable[[], str]]] = [
    (ROOT / "README.md", "<!-- the table below is made by `reelscope docs` from src/reelscope/settings.py -->\n",
     "<!-- end of the table -->\n", settings.markdown_table),
    (ROOT / "docs" / "ARCHITECTURE.md", "```mermaid\n", "```\n", definition.mermaid),
    (ROOT / "docs" / "SECURITY.md", "<!-- the table below is made by `reelscope docs` from src/reelscope/access/roles.py -->\n",
     "<!-- end of the table -->\n", roles.security_table),
]


def written(path: Path, before: str, after: str) -> str:
    """The block of `path` between the two marker lines, as it stands."""
    text = path.read_text(encoding="utf-8")
    start = text.index(before) + len(before)
    return text[start:text.index(after, start)]


def stale() -> list[str]:
    """The files whose block differs from what the code makes now."""
    return [str(path.relative_to(ROOT)) for path, before, after, make in BLOCKS if written(path, before, after) != make()]


def write() -> list[str]:
    """Rewrite every stale block; returns the files changed."""
    changed = stale()
    for path, before, after, make in BLOCKS:
        old = before + written(path, before, after) + after
        path.write_text(path.read_text(encoding="utf-8").replace(old, before + make() + after), encoding="utf-8")
    return changed
