"""Frames decoded for the vision and text steps: sampled at a rate and piped into Python, the
shot signal from the same decode, and the samples kept as JPEG for the steps after it."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import ffmpeg

from reelscope.analysis.media import even, ffmpeg_global_args, ffmpeg_input, ffmpeg_output, file_url, run_ffmpeg
from reelscope.artifacts import read_json, write_json

if TYPE_CHECKING:  # annotations only; numpy itself is imported where it is used
    import numpy as np


def sample_size(facts: dict, max_side: int) -> tuple[int, int]:
    """Frame size handed to the detector: display size, shrunk so the long side is <= max_side."""
    width, height = facts["video"]["display_width"], facts["video"]["display_height"]
    scale = min(1.0, max_side / max(width, height))
    return even(width * scale), even(height * scale)


SIGNAL_SIZE = (64, 36)  # the frames shot detection compares: enough for a cut, ~2 KB a frame


def _signal_output(video, facts: dict, raw: Path):
    """Every frame, at the source's own rate (a constant rate: frame i shows t = i / fps), shrunk
    to SIGNAL_SIZE gray, into the file `raw`: what shot detection reads (analysis/shots.py)."""
    return (video.filter("fps", fps=facts["video"]["fps"]).filter("scale", *SIGNAL_SIZE, flags="area")
            .output(file_url(raw), format="rawvideo", pix_fmt="gray"))


def decode_signal(path: Path, facts: dict, raw: Path, threads: int) -> Path:
    """The shot signal alone (when no detection pass decoded the video): see _signal_output."""
    run_ffmpeg(_signal_output(ffmpeg_input(path, threads).video, facts, raw), "decoding frames for shots", path, threads)
    return raw


def sample_frames(path: Path, facts: dict, fps: float, max_side: int, threads: int, signal: Path | None = None,
                  keep: tuple[Path, int] | None = None) -> Iterator[tuple[float, np.ndarray]]:
    """Yield (t, BGR frame) at `fps` frames per second.

    ffmpeg decodes and drops the frames in between; only the sampled, already-scaled frames
    cross the pipe into Python. Frame i is the last source frame shown at or before t = i / fps
    (fps round=up; its default would give the frame about half an interval later); the final
    partial interval still yields its frame (eof_action=pass). The same decode can also write
    the shot signal into the file `signal` (_signal_output), and with keep=(folder, max side)
    the same samples as JPEG into folder (KeptFrames): the video is decoded once.
    """
    import numpy as np  # here, not at the top: the Lambda functions import this module without numpy

    width, height = sample_size(facts, max_side)
    video = ffmpeg_input(path, threads).video
    outputs = []
    if signal:
        copies = video.split()
        video = copies[0]
        outputs.append(_signal_output(copies[1], facts, signal))
    sampled = video.filter("fps", fps=fps, round="up", eof_action="pass")
    if keep:
        kept_folder, kept_size = Path(keep[0]), sample_size(facts, keep[1])
        copies = sampled.split()
        sampled = copies[0]
        outputs.append(copies[1].filter("scale", *kept_size)
                       .output(file_url(kept_folder / KeptFrames.NAME), start_number=0, **{"q:v": 2}))
    piped = sampled.filter("scale", width, height).output("pipe:", format="rawvideo", pix_fmt="bgr24")
    args = ffmpeg.merge_outputs(piped, *outputs).global_args(*ffmpeg_global_args(threads)).compile(overwrite_output=True)
    count = 0
    with ffmpeg_output(args, path, "decoding frames") as proc:
        chunks = _read_ahead(proc.stdout, width * height * 3)
        try:
            for chunk in chunks:
                yield round(count / fps, 3), np.frombuffer(chunk, np.uint8).reshape(height, width, 3)
                count += 1
        except BaseException:
            proc.kill()  # before the reader is drained below: nothing more to decode
            raise
        finally:
            chunks.close()
    if keep:
        KeptFrames.write_index(kept_folder, fps, kept_size, count)


READ_AHEAD = 16  # sampled frames decoded ahead of the caller (a detection batch is 8)


def _read_ahead(pipe, size: int) -> Iterator[bytes]:
    """Whole frames of `size` bytes from `pipe`, read by a thread up to READ_AHEAD frames ahead, so
    that ffmpeg decodes while the caller works on the frames before (a pipe holds 64 KB, less than
    a frame: without this, decoding and detection took turns)."""
    frames: queue.Queue = queue.Queue(READ_AHEAD)

    def read() -> None:
        try:
            while len(chunk := pipe.read(size)) == size:
                frames.put(chunk)
        finally:
            frames.put(None)

    reader = threading.Thread(target=read, name="read-ahead", daemon=True)
    reader.start()
    try:
        while (chunk := frames.get()) is not None:
            yield chunk
    finally:
        while reader.is_alive():  # closed early: take what it still reads until the writer is gone
            with contextlib.suppress(queue.Empty):
                frames.get(timeout=0.1)


class KeptFrames:
    """Sampled frames one decode kept as JPEG (sample_frames(keep=...)), so that the steps after it
    in its branch do not decode the video again for a shot's keyframe or an evidence frame.
    Complete once its index is written, after the last frame."""

    NAME, INDEX = "%06d.jpg", "frames.json"

    def __init__(self, folder: Path):
        index = read_json(folder / self.INDEX)
        self.folder, self.fps, self.size, self.count = folder, index["fps"], tuple(index["size"]), index["count"]

    @classmethod
    def write_index(cls, folder: Path, fps: float, size: tuple[int, int], count: int) -> None:
        write_json(folder / cls.INDEX, {"fps": fps, "size": list(size), "count": count})

    @classmethod
    def find(cls, folder: Path) -> KeptFrames | None:
        return cls(folder) if (folder / cls.INDEX).is_file() else None

    def path_at(self, t: float) -> Path | None:
        """The frame sampled at time t, when t is a sample time."""
        i = round(t * self.fps)
        return self.folder / (self.NAME % i) if 0 <= i < self.count and abs(i / self.fps - t) < 1e-3 else None

