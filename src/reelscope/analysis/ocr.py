"""On-screen text (captions, signs, slides, lower thirds) read by RapidOCR: PP-OCRv4 detection and
recognition models on ONNX Runtime, shipped inside the rapidocr-onnxruntime wheel (nothing is
downloaded).

The rules (settings in brackets):
  1. Frames are sampled at [ocr_fps], the long side at most [ocr_max_side]. A frame that looks
     like the last one read is not read again: it shows what the last one showed. Looks like:
     on 160x90 gray copies cut into a 16x9 grid, no cell changed by [ocr_change] or more
     (mean absolute difference): a caption coming or going changes its cells, not the frame's mean.
  2. Pieces of text on one line (the detector may box "NORTH" and "GATE 47" apart) are merged:
     boxes that share most of their height and sit less than a line's height apart.
  3. A line is an appearance: it continues while a line of the same text (its letters and
     digits, case aside, at most one in ten read differently) is read at an overlapping place,
     with silences of at most [entity_gap_s]; its text is its most confident reading. Lines
     under [ocr_min_confidence] are dropped.
  4. Each appearance becomes a text entity: a range like an object's (start of its first
     sample to its last + one interval), its confidence, and an evidence frame with the box
     drawn at its most confident reading.
"""

from __future__ import annotations

from pathlib import Path

from reelscope import models, progress
from reelscope.analysis import entities, media
from reelscope.analysis.detect import box_iou
from reelscope.errors import ModelUnavailable
from reelscope.settings import Settings

_EPSILON = 1e-6
_THUMB, _CELL = (160, 90), 10  # what rule 1 compares: 16x9 cells of 10x10 px
DETECT_SIDE = 640  # where lines are looked for (_read_frame)


def load_reader():
    """RapidOCR with its shipped models (its own pipeline is not used: see _read_frame)."""
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError as err:
        raise ModelUnavailable(f"on-screen text needs rapidocr-onnxruntime ({err}); pip install '.[ml]'") from None
    return RapidOCR(det_limit_type="max")  # its default scales a small frame's short side up to 736 px


def _read_frame(reader, frame) -> list[tuple[list[list[float]], str, float]]:
    """(quad in frame pixels, text, confidence) of every line. Lines are found on the frame shrunk
    to DETECT_SIDE (RapidOCR would search a 720p frame at full size: 0.20 s against 0.05 s on 2
    cores, the same boxes for text a few lines high) and read from the frame itself: read from
    a crop upscaled from text 24 px high, the recogniser drops the spaces between capitals
    ("FREECOFFEEAT...")."""
    import cv2
    import numpy as np

    scale = min(1.0, DETECT_SIDE / max(frame.shape[:2]))
    small = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else frame
    boxes, _ = reader.text_det(small)
    if boxes is None or len(boxes) == 0:
        return []
    quads = np.asarray(boxes, dtype=np.float32) / scale
    read, _ = reader.text_rec(reader.get_crop_img_list(frame, quads))
    return [(quad.tolist(), text, float(score)) for quad, (text, score) in zip(quads, read)]


def merge_lines(pieces: list[tuple[list[float], str, float]]) -> list[tuple[list[float], str, float]]:
    """Rule 2: (x1, y1, x2, y2), text, confidence pieces -> lines, left to right within a line."""
    lines: list[list[tuple[list[float], str, float]]] = []
    for piece in sorted(pieces, key=lambda p: (p[0][0], p[0][1])):
        (x1, y1, _, y2), height = piece[0], piece[0][3] - piece[0][1]
        for line in lines:
            (lx1, ly1, lx2, ly2) = line[-1][0]
            overlap = min(y2, ly2) - max(y1, ly1)
            line_height = ly2 - ly1
            if (overlap >= 0.6 * min(height, line_height) and max(height, line_height) <= 1.5 * min(height, line_height)
                    and -0.5 * line_height <= x1 - lx2 <= line_height):
                line.append(piece)
                break
        else:
            lines.append([piece])
    merged = []
    for line in lines:
        box = [min(p[0][0] for p in line), min(p[0][1] for p in line), max(p[0][2] for p in line),
               max(p[0][3] for p in line)]
        merged.append((box, " ".join(p[1].strip() for p in line), min(p[2] for p in line)))
    return merged


def normalized(text: str) -> str:
    """What rule 3 compares: letters and digits, case aside (one reading may lose a space or a
    full stop that the next one keeps: "closesat", "cero." and "cero")."""
    return "".join(ch for ch in text.casefold() if ch.isalnum())


def same_text(a: str, b: str) -> bool:
    """Two readings of one line: equal once normalized, or at most a character in ten apart."""
    import difflib

    return a == b or difflib.SequenceMatcher(None, a, b).ratio() >= 0.9


def read_text(path: Path, facts: dict, settings: Settings, kept: media.KeptFrames | None = None) -> dict:
    """ocr.json content: every text appearance as an entity of kind "text" (rules in the module doc).
    Frames come from `kept` when it holds this sampling (detection kept it), else from a decode."""
    import cv2
    import numpy as np

    size = media.sample_size(facts, settings.ocr_max_side)
    scale = facts["video"]["display_width"] / size[0]  # boxes in display pixels of the source, as detections
    interval = 1.0 / settings.ocr_fps
    appearances: list[dict] = []
    last_thumb, last_lines = None, []
    frames_read = frames_seen = 0
    if kept and kept.fps == settings.ocr_fps and kept.size == size:
        frames = kept.read()
    else:
        frames = media.sample_frames(path, facts, settings.ocr_fps, settings.ocr_max_side, media.decode_threads(settings))
    for t, frame in frames:
        frames_seen += 1
        thumb = cv2.resize(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), _THUMB, interpolation=cv2.INTER_AREA).astype(np.int16)
        if last_thumb is None or _most_changed_cell(thumb, last_thumb) >= settings.ocr_change:
            with models.exclusive(("ocr",), load_reader) as reader:  # one frame at a time per process
                found = _read_frame(reader, frame)
            pieces = [([min(x for x, _ in quad) * scale, min(y for _, y in quad) * scale,
                        max(x for x, _ in quad) * scale, max(y for _, y in quad) * scale], text, score)
                      for quad, text, score in found if text.strip()]
            last_lines = [line for line in merge_lines(pieces) if line[2] >= settings.ocr_min_confidence]
            last_thumb = thumb
            frames_read += 1
        for box, text, confidence in last_lines:
            _extend(appearances, t, [round(v, 1) for v in box], text, round(confidence, 3), interval, settings)
        progress.within("ocr", t, facts["duration_s"])
    texts = _as_entities(appearances, interval, facts["duration_s"])
    return {"rules": {"sample_fps": settings.ocr_fps, "max_side": settings.ocr_max_side, "change": settings.ocr_change,
                      "min_confidence": settings.ocr_min_confidence, "gap_s": settings.entity_gap_s},
            "frames_sampled": frames_seen, "frames_read": frames_read, "texts": texts}


def _most_changed_cell(a, b) -> float:
    difference = abs(a - b).reshape(_THUMB[1] // _CELL, _CELL, _THUMB[0] // _CELL, _CELL)
    return float(difference.mean(axis=(1, 3)).max())


def _extend(appearances: list[dict], t: float, box: list[float], text: str, confidence: float, interval: float,
            settings: Settings) -> None:
    """Rule 3: continue the open appearance of this text at this place, or open a new one."""
    key = normalized(text)
    for appearance in reversed(appearances):
        silence = t - (appearance["last"] + interval)
        if (silence <= settings.entity_gap_s + _EPSILON and box_iou(appearance["box"], box) > 0.3
                and same_text(appearance["key"], key)):
            appearance["last"] = t
            appearance["scores"].append(confidence)
            if confidence > appearance["best"]["confidence"]:
                appearance["best"] = {"t": t, "box": box, "confidence": confidence, "text": text}
            appearance["box"] = box
            return
    appearances.append({"key": key, "first": t, "last": t, "box": box, "scores": [confidence],
                        "best": {"t": t, "box": box, "confidence": confidence, "text": text}})


def _as_entities(appearances: list[dict], interval: float, duration: float) -> list[dict]:
    texts = []
    for appearance in sorted(appearances, key=lambda a: (a["first"], a["box"][1], a["box"][0])):
        end = min(appearance["last"] + interval, duration)
        best = appearance["best"]
        texts.append({"kind": "text", "label": best["text"], "text": best["text"], "animal": False,
                      "start": appearance["first"], "end": round(end, 3), "duration": round(end - appearance["first"], 3),
                      "peak_confidence": max(appearance["scores"]),
                      "mean_confidence": round(sum(appearance["scores"]) / len(appearance["scores"]), 3),
                      "frame_count": len(appearance["scores"]), "max_instances": 1,
                      "evidence": {"t": best["t"], "box": best["box"], "confidence": best["confidence"]}})
    for index, text in enumerate(texts):
        text["evidence"]["path"] = f"text/{index:04d}-{entities.slug(text['text'][:40])}.jpg"
    return texts


def render_evidence(video: Path, facts: dict, texts: list[dict], out_dir: Path,
                    kept: media.KeptFrames | None = None) -> None:
    """Each appearance's evidence frame, its box drawn, as the object entities' (entities.py)."""
    size = (facts["video"]["display_width"], facts["video"]["display_height"])
    entities.render_evidence(video, size, [{**text, "label": "text"} for text in texts], out_dir, kept)
