"""Shot boundaries from every frame, seen small: hard cuts and fades through black, a keyframe per shot.

The detection pass decodes the video once and also writes every frame at SIGNAL_SIZE gray
(frames.sample_frames); `frame_signal` turns those frames into three numbers per frame:
  luma     the frame's mean brightness (0-255; video black is 16)
  change   mean absolute difference from the previous frame
  settled  mean absolute difference between the previous frame and two frames later
The rules (settings in brackets):
  1. Cut before frame i: change[i] is at least [shot_cut_change], at least [shot_cut_ratio]
     times the median change of the half second around it (motion raises the median, a cut
     stands out of it), and settled[i] is at least [shot_cut_change] too (a flash or a single
     glitched frame comes back; a new shot does not).
  2. Fade: a run of frames darker than [shot_dark_luma] that neither starts nor ends the video
     and has no cut at its edges (a hard cut into or out of black is rule 1) puts a boundary at
     its middle frame.
  3. A boundary closer than [shot_min_s] to the one before it is dropped.
A boundary before frame i is at t = i / fps: the first frame of the new shot. Dissolves (one
shot blending into the next without black) are not found. A shot's keyframe is the frame
detection sampled nearest its middle (the vision branch keeps those: nothing is decoded again),
or its middle frame when no sample falls inside the shot.
"""

from __future__ import annotations

import math
from pathlib import Path

from reelscope.analysis import frames, media
from reelscope.settings import Settings

KEYFRAME_WIDTH = 320
_CHUNK = 4096  # frames compared at once: bounded memory for hours of video


def frame_signal(raw: Path, fps: float) -> dict:
    """frame-signal.json content from the raw SIGNAL_SIZE gray frames that ffmpeg wrote."""
    import numpy as np

    pixels = frames.SIGNAL_SIZE[0] * frames.SIGNAL_SIZE[1]
    count = Path(raw).stat().st_size // pixels
    luma, change, settled = np.zeros(count), np.zeros(count), np.zeros(count)
    # Read a chunk at a time (with the frame before it and the two after, which it is compared
    # with): a memory map would keep every page it read resident, 200 MB for an hour at 25 fps.
    with open(raw, "rb") as signal:
        for start in range(0, count, _CHUNK):
            index = np.arange(start, min(count, start + _CHUNK))
            first, last = max(start - 1, 0), min(count, index[-1] + 3)
            signal.seek(first * pixels)
            block = np.frombuffer(signal.read((last - first) * pixels), np.uint8).reshape(-1, pixels).astype(np.int16)
            current = block[index - first]
            previous = block[np.maximum(index - 1, 0) - first]
            later = block[np.minimum(index + 2, count - 1) - first]
            luma[index] = current.mean(axis=1)
            change[index] = np.abs(current - previous).mean(axis=1)
            settled[index] = np.abs(later - previous).mean(axis=1)

    def rounded(values) -> list[float]:
        return [round(float(v), 1) for v in values]

    return {"fps": fps, "size": list(frames.SIGNAL_SIZE), "luma": rounded(luma), "change": rounded(change),
            "settled": rounded(settled)}


def boundaries(signal: dict, settings: Settings) -> list[tuple[int, str]]:
    """(first frame of a new shot, "cut" | "fade"), in order: the rules of the module doc."""
    import numpy as np

    luma, change, settled = (np.asarray(signal[k], float) for k in ("luma", "change", "settled"))
    count, half = len(luma), max(1, round(signal["fps"] / 2))
    cuts = []
    for i in np.flatnonzero((change >= settings.shot_cut_change) & (settled >= settings.shot_cut_change)):
        if i == 0:
            continue
        around = np.concatenate([change[max(1, i - half): i], change[i + 1: i + 1 + half]])
        typical = float(np.median(around)) if around.size else 0.0
        if change[i] >= settings.shot_cut_ratio * max(typical, 1.0):
            cuts.append(int(i))
    found = [(i, "cut") for i in cuts]
    dark = np.concatenate([[False], luma < settings.shot_dark_luma, [False]])
    edges = np.flatnonzero(np.diff(dark.astype(np.int8)))
    for first, end in zip(edges[::2], edges[1::2]):  # dark run: frames first..end-1
        if first == 0 or end == count or any(first - 1 <= c <= end + 1 for c in cuts):
            continue
        found.append((int(first + end) // 2, "fade"))
    kept: list[tuple[int, str]] = []
    for frame, kind in sorted(found):
        if (frame - (kept[-1][0] if kept else 0)) / signal["fps"] >= settings.shot_min_s:
            kept.append((frame, kind))
    return kept


def find_shots(signal: dict, duration: float, settings: Settings) -> list[dict]:
    """The shots between the boundaries, each with the time of its keyframe (module doc)."""
    fps = signal["fps"]
    starts = [(0, "start"), *boundaries(signal, settings)]
    ends = [frame / fps for frame, _ in starts[1:]] + [duration]
    shots = []
    for index, ((first, kind), end) in enumerate(zip(starts, ends)):
        shots.append({"index": index, "start": round(first / fps, 3), "end": round(end, 3), "starts_with": kind,
                      "keyframe": {"t": _keyframe_time(first / fps, end, fps, settings.detect_fps),
                                   "path": f"shots/{index:04d}.jpg"}})
    return shots


def _keyframe_time(start: float, end: float, fps: float, sample_fps: float) -> float:
    """The sample time nearest the shot's middle among those in [start, end) (a sample at t shows
    the last frame at or before t: frames.sample_frames), else the middle frame's time."""
    middle = (start + end) / 2
    inside = range(math.ceil(round(start * sample_fps, 6)), math.ceil(round(end * sample_fps, 6)))
    if not inside:
        return round(int(middle * fps) / fps, 3)
    return round(min(inside, key=lambda i: (abs(i / sample_fps - middle), i)) / sample_fps, 3)


def render_keyframes(video: Path, facts: dict, shots: list[dict], out_dir: Path,
                     kept: frames.KeptFrames | None = None) -> None:
    width, height = facts["video"]["display_width"], facts["video"]["display_height"]
    (out_dir / "shots").mkdir(exist_ok=True)
    for shot in shots:
        t = shot["keyframe"]["t"]
        media.extract_frame(video, t, out_dir / shot["keyframe"]["path"], KEYFRAME_WIDTH,
                            media.even(height * KEYFRAME_WIDTH / width), kept and kept.path_at(t))


def cut_times(shots: list[dict]) -> list[float]:
    """Where a hard cut starts a shot: entity ranges end there (entities.py)."""
    return [shot["start"] for shot in shots if shot["starts_with"] == "cut"]
