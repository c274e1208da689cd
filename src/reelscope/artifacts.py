"""Writing artifacts: deterministic JSON, all-or-nothing publication, and what kind each file is.

A stage writes into a staging folder next to its output folder; only when the stage has
finished are the files moved into place (each move is an atomic rename), JSON indexes last,
so a crash never leaves a half-written file under its final name.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def dumps(obj) -> str:
    """Byte-stable JSON: sorted keys, UTF-8, trailing newline. Round floats before calling."""
    return json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_json(path: Path, obj) -> Path:
    """Write JSON atomically (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(dumps(obj))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_json(path: Path):
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


class Staging:
    """A stage's scratch folder; after publication `published` lists the files it put in place."""

    def __init__(self, path: Path):
        self.dir = path
        self.published: list[str] = []


@contextlib.contextmanager
def staging(out_dir: Path) -> Iterator[Staging]:
    """Yield an empty folder; on success publish its entries into out_dir, on error discard them."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stage = Staging(Path(tempfile.mkdtemp(dir=out_dir, prefix=".staging-")))
    try:
        yield stage
        stage.published = sorted(str(p.relative_to(stage.dir)) for p in stage.dir.rglob("*") if p.is_file())
        # Data first, JSON indexes last: an index never points at a file not yet in place.
        for entry in sorted(stage.dir.iterdir(), key=lambda p: (p.suffix == ".json", p.name)):
            target = out_dir / entry.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            os.replace(entry, target)
    finally:
        shutil.rmtree(stage.dir, ignore_errors=True)


@contextlib.contextmanager
def building(target: Path) -> Iterator[Path]:
    """Yield an empty folder to build `target` in; on success it becomes `target` in one rename
    (a concurrent builder that got there first wins and this copy is dropped), on error nothing
    is left. For caches several processes may fill at once (joined or exported model weights)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=target.parent, prefix=".partial-"))
    try:
        yield work
        try:
            os.rename(work, target)
        except OSError:
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def sha256_file(*paths: Path) -> str:
    """sha256 of the file, or of several files read one after the other (a model split in parts)."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


ARTIFACT_KINDS = {  # first matching prefix wins
    "media.json": "media", "renditions.json": "renditions", "poster.jpg": "poster", "thumbnails/": "thumbnail",
    "transcript.raw.json": "transcript-raw", "transcript.json": "transcript",
    "subtitles.srt": "subtitles", "subtitles.vtt": "subtitles",
    "transcript.en.json": "translation", "subtitles.en.srt": "subtitles", "subtitles.en.vtt": "subtitles",
    "speakers.json": "speakers",
    "detections.json": "detections", "frame-signal.json": "frame-signal", "shots.json": "shots", "tracks.json": "tracks",
    "shots/": "keyframe", "entities.json": "entities", "evidence/": "evidence",
    "ocr.json": "ocr", "text/": "evidence",
    "report.json": "report", "report.pdf": "report", "entities.csv": "table", "transcript.csv": "table",
    "search/": "search-index",
}


def artifact_kind(relative: str) -> str:
    if relative.endswith(".mp4"):
        return "rendition"
    return next(kind for prefix, kind in ARTIFACT_KINDS.items() if relative.startswith(prefix))


def describe_artifact(out_dir: Path, relative: str) -> dict:
    path = Path(out_dir) / relative
    return {"path": relative, "kind": artifact_kind(relative), "sha256": sha256_file(path),
            "size_bytes": path.stat().st_size}
