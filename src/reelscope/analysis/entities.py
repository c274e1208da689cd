"""Per-frame detections -> the analyst's timeline: time ranges per label, with evidence.

The rules (settings in brackets; times in seconds; interval = 1 / sample_fps):
  1. Hits. A sampled frame is a hit for a label when it holds at least one detection of that
     label (detections under detect_min_confidence were already dropped by the detector). The
     frame's score for the label is its most confident such detection.
  2. A hit at time t stands for the sampled interval [t, t + interval).
  3. Merging. Hits of one label join the same range while the silence between them,
     next_t - (previous_t + interval), is at most [entity_gap_s]. Consecutive samples have a
     silence of 0, so with the defaults (1 fps, gap 1.0) one missed sample is bridged, two are not.
  4. A range runs from its first hit to its last hit + interval, clipped to the media duration.
     Hard cuts (shots.py) split ranges: hits on either side of a cut join only when one of the
     label's tracks (tracks.py) is in both, and a range ends at the next cut after its last hit
     at the latest.
  5. Flicker filter. A range is dropped when it lasts less than [entity_min_duration_s] or its
     peak confidence is under [entity_min_peak_confidence].
  6. Each kept range reports peak and mean confidence (mean of its hit frames' scores), the
     number of hit frames, the most instances seen in one frame, the tracks seen in it, and its
     evidence: the single most confident detection (earliest on ties), drawn on the frame shown
     at that time.
  7. Each label reports how many distinct objects its kept ranges hold (their distinct tracks).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from reelscope.analysis import frames, media
from reelscope.settings import Settings

EVIDENCE_MAX_SIDE = 1280
_EPSILON = 1e-6  # sample times are rounded to ms; keep "at most" inclusive


def aggregate(detections: dict, settings: Settings, cuts: Sequence[float] = (),
              track_of: Mapping[tuple[float, int], int] | None = None) -> list[dict]:
    """The kept ranges (rules 1-6); `track_of` maps (sample time, detection index) to a track id."""
    interval = 1.0 / detections["sample_fps"]
    duration = detections["duration_s"]
    cuts = sorted(cuts)

    def next_cut(t: float) -> float:  # the first cut after t (a hit at a cut's time is after it)
        i = bisect.bisect_right(cuts, t + _EPSILON)
        return cuts[i] if i < len(cuts) else float("inf")

    track_of = track_of or {}
    hits: dict[tuple[str, str | None], list[tuple[float, dict, int, set[int]]]] = {}
    for frame in sorted(detections["frames"], key=lambda f: f["t"]):
        by_label: dict[tuple[str, str | None], list[tuple[int, dict]]] = {}
        for j, det in enumerate(frame["detections"]):  # a posture (detect.POSTURES) is a range of its own
            by_label.setdefault((det["label"], det.get("posture")), []).append((j, det))
        for label, dets in by_label.items():
            best = min((det for _, det in dets), key=lambda d: -d["confidence"])
            seen = {track_of[(frame["t"], j)] for j, _ in dets if (frame["t"], j) in track_of}
            hits.setdefault(label, []).append((frame["t"], best, len(dets), seen))

    ranges = []
    for (label, posture), label_hits in hits.items():
        groups: list[list[tuple[float, dict, int, set[int]]]] = []
        for hit in label_hits:
            last = groups[-1][-1] if groups else None
            if (last is not None and hit[0] - (last[0] + interval) <= settings.entity_gap_s + _EPSILON
                    and (next_cut(last[0]) > hit[0] + _EPSILON or hit[3] & last[3])):
                groups[-1].append(hit)
            else:
                groups.append([hit])
        for group in groups:
            start, end = group[0][0], min(group[-1][0] + interval, duration, next_cut(group[-1][0]))
            scores = [det["confidence"] for _, det, _, _ in group]
            best_t, best_det, _, _ = min(group, key=lambda h: (-h[1]["confidence"], h[0]))
            if end - start + _EPSILON < settings.entity_min_duration_s or max(scores) < settings.entity_min_peak_confidence:
                continue
            ranges.append({
                "label": label,
                "animal": best_det["animal"],
                "start": round(start, 3),
                "end": round(end, 3),
                "duration": round(end - start, 3),
                "peak_confidence": round(max(scores), 3),
                "mean_confidence": round(sum(scores) / len(scores), 3),
                "frame_count": len(group),
                "max_instances": max(count for _, _, count, _ in group),
                "track_ids": sorted(set().union(*(seen for _, _, _, seen in group))),
                "evidence": {"t": best_t, "box": best_det["box"], "confidence": best_det["confidence"]},
                **({"posture": posture} if posture else {}),
            })
    ranges.sort(key=lambda r: (r["start"], r["label"], r.get("posture", "")))
    for index, entity in enumerate(ranges):
        entity["id"] = index
        entity["evidence"]["path"] = f"evidence/{index:04d}-{slug(entity['label'])}.jpg"
    return ranges


def label_counts(ranges: list[dict]) -> list[dict]:
    """Rule 7: per label, the distinct tracks of its kept ranges."""
    tracks: dict[str, set[int]] = {}
    for entity in ranges:
        tracks.setdefault(entity["label"], set()).update(entity["track_ids"])
    return [{"label": label, "unique_count": len(ids), "track_ids": sorted(ids)} for label, ids in sorted(tracks.items())]


def slug(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-") or "label"


def render_evidence(video: Path, frame_size: tuple[int, int], entities: list[dict], out_dir: Path,
                    kept: frames.KeptFrames | None = None) -> None:
    """Write each range's evidence JPEG: the frame (display width, height) at the best detection
    (the sampled frame itself when it was kept), its box drawn and captioned with its label."""
    width, height = frame_size
    scale = min(1.0, EVIDENCE_MAX_SIDE / max(width, height))
    for entity in entities:
        evidence = entity["evidence"]
        target = out_dir / evidence["path"]
        target.parent.mkdir(exist_ok=True)
        media.extract_frame(video, evidence["t"], target, media.even(width * scale), media.even(height * scale),
                            kept and kept.path_at(evidence["t"]))
        with Image.open(target) as image:
            image = image.convert("RGB")
            draw = ImageDraw.Draw(image)
            x1, y1, x2, y2 = (v * scale for v in evidence["box"])
            thickness = max(2, round(max(image.size) / 200))
            draw.rectangle((x1, y1, x2, y2), outline=(255, 40, 40), width=thickness)
            # Sized to stay readable where the frame is shown small: about 11 px in a 240 px wide
            # thumbnail (the report page's gallery, a search hit). The time is beside it, not in it.
            caption = " ".join(filter(None, (entity["label"], entity.get("posture"), f"{evidence['confidence']:.2f}")))
            font = ImageFont.load_default(size=max(12, round(max(image.size) / 22)))
            left, upper, right, lower = draw.textbbox((0, 0), caption, font=font)
            top = max(0, y1 - (lower - upper) - 8)
            draw.rectangle((x1, top, x1 + right - left + 8, top + lower - upper + 8), fill=(255, 40, 40))
            draw.text((x1 + 4 - left, top + 4 - upper), caption, fill=(255, 255, 255), font=font)
            image.save(target, "JPEG", quality=90)
