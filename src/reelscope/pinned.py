"""Weights fetched on purpose, never at run time: each pinned by its URL, size and sha256.

`reelscope models pull NAME` puts one into REELSCOPE_MODEL_DIR, where the steps look for it; the
Batch image's build fetches the same pins (infra/config.py reads them here). A download that is
not the pinned file is refused and nothing of it is kept.
"""

from __future__ import annotations

import hashlib
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from reelscope.artifacts import sha256_file
from reelscope.errors import ReelscopeError


@dataclass(frozen=True)
class Pinned:
    file: str
    url: str
    size: int
    sha256: str
    about: str


PINNED = {
    "yolov8n": Pinned("yolov8n.pt", "https://github.com/ultralytics/assets/releases/download/v8.3.0/yolov8n.pt", 6_549_796,
                      "f59b3d833e2ff32e194b5bb8e08d211dc7c5bdf144b90d2c8412c47ccfc83b36",
                      "YOLOv8n on COCO's 80 classes (people, vehicles, animals); AGPL-3.0"),
}
CHUNK = 1 << 20


def pinned(name: str) -> Pinned:
    if name not in PINNED:
        raise ReelscopeError(f"no pinned weights named {name!r}: {', '.join(sorted(PINNED))}")
    return PINNED[name]


def pull(name: str, model_dir: Path, timeout_s: float = 60.0) -> tuple[Path, bool]:
    """(path, fetched): the pinned file in model_dir, fetched unless it is there already with its
    sha256. ReelscopeError when the download fails or is not the pinned file (its part is removed)."""
    pin = pinned(name)
    target = Path(model_dir) / pin.file
    if target.is_file() and sha256_file(target) == pin.sha256:
        return target, False
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(f".{pin.file}.part")
    digest, size = hashlib.sha256(), 0
    try:
        with urllib.request.urlopen(pin.url, timeout=timeout_s) as response, open(part, "wb") as out:  # noqa: S310 - a pinned https URL
            while size <= pin.size and (chunk := response.read(CHUNK)):
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
        if size != pin.size or digest.hexdigest() != pin.sha256:
            raise ReelscopeError(f"{name}: {pin.url} gave {size} bytes with sha256 {digest.hexdigest()}, not the pinned "
                                 f"{pin.size} bytes with sha256 {pin.sha256}: refused, nothing kept")
        part.replace(target)
    except OSError as err:  # no network, refused, timed out, a disk error
        raise ReelscopeError(f"{name}: could not fetch {pin.url}: {err}") from None
    finally:
        part.unlink(missing_ok=True)
    return target, True
