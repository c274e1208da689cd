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
     In a frame that looks the same, the lines with digits are read again where they stand
     (recognition only): a clock's seconds change too few pixels to count as a change.
  3. Lines are followed over time: a line continues the track at an overlapping place (IoU over
     0.3) whose shape is alike (letters and digits, case aside, each digit as 0, SAME_LINE of
     difflib's ratio), with silences of at most [entity_gap_s]. So a caption misread a dozen
     ways over a moving background stays one track, a clock whose digits change stays one
     track, and another caption at the same place starts another. A track inside a longer
     one's box and time, with under a third of its frames, is a fragment of it and dropped.
     Lines under [ocr_min_confidence] are dropped.
  4. A track is an overlay (a clock, a frame counter, a score) when most of its readings share
     one shape with two digits or more and the digits change (OVERLAY_MIN_CHANGES distinct
     readings, distinct digits in 30% of them or more): one entity of kind "overlay" with its
     region, time range, first and last readings. Its readings are not search terms.
  5. Any other track is a text entity whose text is the consensus of its readings: the reading
     most like all the others, weighted by frames and confidence.
  6. Each entity is a range like an object's (start of its first sample to its last + one
     interval), its confidence, and one evidence frame with the box drawn at its most
     confident reading. Every fresh reading is kept in ocr.json ("readings", "of" the entity's
     place among texts then overlays) for audit; an overlay that reads as a date and time gives
     the wall clock (wallclock.py).
  7. A track inside an overlay's place while it shows, or a piece of a text's reading in its
     place, belongs to it; a track under [ocr_min_frames] frames, or with no letter or digit,
     is audit material only. Rules 4, 5 and 7 are text_entities.py's.
"""

from __future__ import annotations

from pathlib import Path

from reelscope import models, progress
from reelscope.analysis import entities, frames, media, wallclock
from reelscope.analysis.detect import box_iou
from reelscope.analysis.text_entities import as_entities, contains, normalized, similarity, template
from reelscope.errors import ModelUnavailable
from reelscope.settings import Settings

_EPSILON = 1e-6
_THUMB, _CELL = (160, 90), 10  # what rule 1 compares: 16x9 cells of 10x10 px
DETECT_SIDE = 640  # where lines are looked for (_read_frame)
# ... and every FULL_READ_S, where they are looked for closely: over a busy moving picture the
# detector at 640 px found a 32 px clock in none of 6 frames, at 960 px in all 6 (0.09 s a frame
# against 0.29 s on 2 cores); once found, a line is read where it stands (_where_tracks_stand).
CLOSE_DETECT_SIDE = 960
SAME_LINE = 0.6  # rule 3: shapes this alike are one line (a word dropped or merged, not another caption)
SAME_CROP = 2.0  # a line's pixels within this mean absolute difference (0-255) are read as before
# Rule 1: a frame is read whole at least this often however still it looks: a busy moving picture
# averages out in the grid, and text the detector missed in it would not be looked for again.
FULL_READ_S = 10.0


def load_reader(threads: int):
    """RapidOCR with its shipped models (its own pipeline is not used: see _read_frame), each
    model on `threads` threads (models.inference_threads)."""
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError as err:
        raise ModelUnavailable(f"on-screen text needs rapidocr-onnxruntime ({err}); pip install '.[ml]'") from None
    # det_limit_type: its default scales a small frame's short side up to 736 px
    return RapidOCR(det_limit_type="max", intra_op_num_threads=threads, inter_op_num_threads=1)


def reader(settings: Settings):
    """The process's one reader of this many threads, held by the caller alone (a frame at a time)."""
    threads = models.inference_threads(settings.ocr_threads)
    return models.exclusive(("ocr", threads), lambda: load_reader(threads))


def _read_frame(reader, frame, before: list[tuple] = (),
                side: int = DETECT_SIDE) -> list[tuple[list[list[float]], str, float, object]]:
    """(quad in frame pixels, text, confidence, crop) of every line. Lines are found on the frame
    shrunk to DETECT_SIDE (RapidOCR would search a 720p frame at full size: 0.20 s against 0.05 s
    on 2 cores, the same boxes for text a few lines high) and read from the frame itself: read
    from a crop upscaled from text 24 px high, the recogniser drops the spaces between capitals
    ("FREECOFFEEAT..."). A line whose crop is the one of the frame read `before` (same place,
    the same pixels give or take SAME_CROP) keeps that reading: recognition was most of a
    frame's cost, and a moving picture around still text changes the frame, not the text."""
    import cv2
    import numpy as np

    scale = min(1.0, side / max(frame.shape[:2]))
    small = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else frame
    boxes, _ = reader.text_det(small)
    if boxes is None or len(boxes) == 0:
        return []
    quads = np.asarray(boxes, dtype=np.float32) / scale
    crops = reader.get_crop_img_list(frame, quads)
    known = [next(((text, score) for quad_b, text, score, crop_b in before if _same_crop(quad, crop, quad_b, crop_b)), None)
             for quad, crop in zip(quads, crops)]
    unread = [i for i, reading in enumerate(known) if reading is None]
    if unread:
        read, _ = reader.text_rec([crops[i] for i in unread])
        for i, reading in zip(unread, read):
            known[i] = reading
    return [(quad.tolist(), text, float(score), crop) for quad, crop, (text, score) in zip(quads, crops, known)]


def _same_crop(quad, crop, quad_before, crop_before) -> bool:
    import numpy as np

    return (crop.shape == crop_before.shape and float(np.abs(np.asarray(quad) - np.asarray(quad_before)).max()) <= 1.0
            and float(np.abs(crop.astype(np.int16) - crop_before).mean()) <= SAME_CROP)


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


def read_text(path: Path, facts: dict, settings: Settings) -> dict:
    """ocr.json content: captions and signs as entities of kind "text", overlays (a clock, a
    counter) as entities of kind "overlay", every fresh reading for audit, and the wall clock an
    overlay shows (wallclock.py). The branch decodes its own frames (beside detection, not after it)."""
    import cv2
    import numpy as np

    size = frames.sample_size(facts, settings.ocr_max_side)
    scale = facts["video"]["display_width"] / size[0]  # boxes in display pixels of the source, as detections
    interval = 1.0 / settings.ocr_fps

    tracks: list[dict] = []
    last_thumb, last_lines, found, last_read = None, [], [], 0.0
    frames_read = lines_reread = frames_seen = 0
    sampled = frames.sample_frames(path, facts, settings.ocr_fps, settings.ocr_max_side, media.decode_threads(settings))
    for t, frame in sampled:
        frames_seen += 1
        thumb = cv2.resize(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), _THUMB, interpolation=cv2.INTER_AREA).astype(np.int16)
        closely = last_thumb is None or t - last_read >= FULL_READ_S
        if closely or _most_changed_cell(thumb, last_thumb) >= settings.ocr_change:
            with reader(settings) as ocr_reader:
                found = _read_frame(ocr_reader, frame, found, CLOSE_DETECT_SIDE if closely else DETECT_SIDE)
            pieces = [([min(x for x, _ in quad) * scale, min(y for _, y in quad) * scale,
                        max(x for x, _ in quad) * scale, max(y for _, y in quad) * scale], text, score)
                      for quad, text, score, _ in found if text.strip()]
            last_lines = [(*line, True) for line in merge_lines(pieces) if line[2] >= settings.ocr_min_confidence]
            with reader(settings) as ocr_reader:
                last_lines = _where_tracks_stand(ocr_reader, frame, last_lines, _open(tracks, t, interval, settings),
                                                 scale, settings.ocr_min_confidence)
            last_thumb, last_read = thumb, t if closely else last_read
            frames_read += 1
        elif any(_has_digits(text) for _, text, _, _ in last_lines):
            with reader(settings) as ocr_reader:
                last_lines = _reread_digits(ocr_reader, frame, last_lines, scale, settings.ocr_min_confidence)
            lines_reread += sum(fresh for *_, fresh in last_lines)
        else:
            last_lines = [(*line, False) for *line, _ in last_lines]
        for box, text, confidence, fresh in last_lines:
            _extend(tracks, t, [round(v, 1) for v in box], text, round(confidence, 3), fresh, interval, settings)
        progress.within("ocr", t, facts["duration_s"])
    texts, overlays, readings = as_entities(tracks, interval, facts["duration_s"], settings)
    clock, clock_note = wallclock.find([(overlay, [r for r in readings if r["of"] == len(texts) + k and "part" not in r])
                                        for k, overlay in enumerate(overlays)], facts["duration_s"], settings)
    return {"rules": {"sample_fps": settings.ocr_fps, "max_side": settings.ocr_max_side, "change": settings.ocr_change,
                      "min_confidence": settings.ocr_min_confidence,
                      "gap_s": settings.entity_gap_s},
            "frames_sampled": frames_seen, "frames_read": frames_read, "lines_reread": lines_reread,
            "texts": texts, "overlays": overlays,
            "readings": readings, "wall_clock": clock, "wall_clock_note": clock_note}


def _has_digits(text: str) -> bool:
    return any(ch.isdigit() for ch in text)


def _read_at(reader, frame, boxes: list[list[float]], scale: float) -> list[tuple[str, float]]:
    """(text, confidence) read at each box (display pixels; recognition only: a few ms against a
    frame's 50), with a margin: the detector's boxes hug the glyphs, and a digit may grow wider."""
    import numpy as np

    if not boxes:
        return []
    quads = []
    for x1, y1, x2, y2 in boxes:
        margin = 0.15 * (y2 - y1)
        x1, y1, x2, y2 = ((x1 - margin) / scale, (y1 - margin) / scale, (x2 + margin) / scale, (y2 + margin) / scale)
        quads.append([[x1, y1], [x2, y1], [x2, y2], [x1, y2]])
    height, width = frame.shape[:2]
    quads = np.clip(np.asarray(quads), 0, [width - 1, height - 1]).astype(np.float32)
    read, _ = reader.text_rec(reader.get_crop_img_list(frame, quads))
    return [(text, float(score)) for text, score in read]


def _open(tracks: list[dict], t: float, interval: float, settings: Settings) -> list[dict]:
    """The tracks a line at time t may continue (rule 3's silence)."""
    return [track for track in tracks if t - (track["last"] + interval) <= settings.entity_gap_s + _EPSILON]


def _where_tracks_stand(reader, frame, lines: list[tuple], tracks: list[dict], scale: float,
                        min_confidence: float) -> list[tuple]:
    """Rule 2: an open track that no line of this frame covers as wide as it stands is read again
    at its place (recognition only). Over a busy moving picture the detector misses still text in
    some frames and boxes it short in others (measured, a clock over moving texture: found in 77
    of 120 frames, a third of those without their last digits, so the clock fell apart into
    three overlays and a dozen text fragments). A reading there that has the track's shape takes
    the place of the short lines."""
    wanted = []
    for track in tracks:
        if any(other is not track and contains(other["span"], track["span"]) >= 0.7 and other["span"] != track["span"]
               for other in tracks):
            continue  # a piece of a line read whole: reading it would keep the piece going
        (x1, y1, x2, y2), (bx1, by1, bx2, by2) = track["box"], track["best"]["box"]
        box = [min(x1, bx1), min(y1, by1), max(x2, bx2), max(y2, by2)]  # where it stands now, as wide as read best
        covering = [i for i, line in enumerate(lines) if box_iou(line[0], box) > 0.3 or contains(box, line[0]) >= 0.7]
        if not covering or all(lines[i][0][2] - lines[i][0][0] < 0.95 * (box[2] - box[0]) for i in covering):
            wanted.append((track, box, covering))
    readings = _read_at(reader, frame, [box for _, box, _ in wanted], scale)
    replaced, added = set(), []
    for (track, box, covering), (text, score) in zip(wanted, readings):
        if text.strip() and score >= min_confidence and similarity(track["template"], template(normalized(text))) >= SAME_LINE:
            replaced.update(covering)
            added.append((box, text, score, True))
    return [line for i, line in enumerate(lines) if i not in replaced] + added


def _reread_digits(reader, frame, lines: list[tuple], scale: float, min_confidence: float) -> list[tuple]:
    """Rule 2: the lines with digits read again where they stand, the others kept as they were read."""
    again = iter(_read_at(reader, frame, [box for box, text, *_ in lines if _has_digits(text)], scale))
    lines_now = []
    for box, text, confidence, _ in lines:
        if not _has_digits(text):
            lines_now.append((box, text, confidence, False))
            continue
        new_text, score = next(again)
        fresh = bool(new_text.strip()) and score >= min_confidence
        lines_now.append((box, new_text, float(score), True) if fresh else (box, text, confidence, False))
    return lines_now


def _most_changed_cell(a, b) -> float:
    difference = abs(a - b).reshape(_THUMB[1] // _CELL, _CELL, _THUMB[0] // _CELL, _CELL)
    return float(difference.mean(axis=(1, 3)).max())


def _extend(tracks: list[dict], t: float, box: list[float], text: str, confidence: float, fresh: bool, interval: float,
            settings: Settings) -> None:
    """Rule 3: continue the open track of a line at this place whose text has this shape, or open one."""
    key = normalized(text)
    shape = template(key)
    for track in reversed(tracks):
        silence = t - (track["last"] + interval)
        if (silence <= settings.entity_gap_s + _EPSILON
                and max(box_iou(track["box"], box), box_iou(track["best"]["box"], box)) > 0.3
                and similarity(track["template"], shape) >= SAME_LINE):
            break
    else:
        track = {"template": shape, "first": t, "box": box, "span": box, "frames": 0, "scores": [], "readings": [],
                 "best": {"t": t, "box": box, "confidence": -1.0, "text": text}}
        tracks.append(track)
    track["last"], track["box"] = t, box
    span = track["span"]  # where it stands, all its readings together
    track["span"] = [min(span[0], box[0]), min(span[1], box[1]), max(span[2], box[2]), max(span[3], box[3])]
    track["frames"] += 1
    track["scores"].append(confidence)
    if fresh:
        track["readings"].append({"t": t, "text": text, "key": key, "confidence": confidence, "frames": 1})
    elif track["readings"]:
        track["readings"][-1]["frames"] += 1  # the frame looked the same: its reading stands for it too
    if confidence > track["best"]["confidence"]:
        track["best"] = {"t": t, "box": box, "confidence": confidence, "text": text}


def render_evidence(video: Path, facts: dict, texts: list[dict], out_dir: Path) -> None:
    """Each appearance's evidence frame, its box drawn, as the object entities' (entities.py)."""
    size = (facts["video"]["display_width"], facts["video"]["display_height"])
    entities.render_evidence(video, size, [{**text, "label": "text"} for text in texts], out_dir)
