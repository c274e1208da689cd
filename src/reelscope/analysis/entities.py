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
  5. Flicker filter. A range is dropped when it lasts less than [entity_min_duration_s] or its
     peak confidence is under [entity_min_peak_confidence].
  6. Each kept range reports peak and mean confidence (mean of its hit frames' scores), the
     number of hit frames, the most instances seen in one frame, and its evidence: the single
     most confident detection (earliest on ties), drawn on the frame shown at that time.
"""

from __future__ import annotations

import re
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from reelscope.analysis import media
from reelscope.settings import Settings

EVIDENCE_MAX_SIDE = 1280
_EPSILON = 1e-6  # sample times are rounded to ms; keep "at most" inclusive


def aggregate(detections: dict, settings: Settings) -> list[dict]:
    interval = 1.0 / detections["sample_fps"]
    duration = detections["duration_s"]
    hits: dict[str, list[tuple[float, dict, int]]] = {}
    for frame in sorted(detections["frames"], key=lambda f: f["t"]):
        by_label: dict[str, list[dict]] = {}
        for det in frame["detections"]:
            by_label.setdefault(det["label"], []).append(det)
        for label, dets in by_label.items():
            best = min(dets, key=lambda d: -d["confidence"])
            hits.setdefault(label, []).append((frame["t"], best, len(dets)))

    ranges = []
    for label, label_hits in hits.items():
        groups: list[list[tuple[float, dict, int]]] = []
        for hit in label_hits:
            if groups and hit[0] - (groups[-1][-1][0] + interval) <= settings.entity_gap_s + _EPSILON:
                groups[-1].append(hit)
            else:
                groups.append([hit])
        for group in groups:
            start, end = group[0][0], min(group[-1][0] + interval, duration)
            scores = [det["confidence"] for _, det, _ in group]
            best_t, best_det, _ = min(group, key=lambda h: (-h[1]["confidence"], h[0]))
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
                "max_instances": max(count for _, _, count in group),
                "evidence": {"t": best_t, "box": best_det["box"], "confidence": best_det["confidence"]},
            })
    ranges.sort(key=lambda r: (r["start"], r["label"]))
    for index, entity in enumerate(ranges):
        entity["id"] = index
        entity["evidence"]["path"] = f"evidence/{index:04d}-{_slug(entity['label'])}.jpg"
    return ranges


def _slug(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-") or "label"


def render_evidence(video: Path, detections: dict, entities: list[dict], out_dir: Path) -> None:
    """Write each range's evidence JPEG: the frame at the best detection, its box drawn."""
    width, height = detections["frame_width"], detections["frame_height"]
    scale = min(1.0, EVIDENCE_MAX_SIDE / max(width, height))
    (out_dir / "evidence").mkdir(exist_ok=True)
    for entity in entities:
        evidence = entity["evidence"]
        target = out_dir / evidence["path"]
        media.extract_frame(video, evidence["t"], target, media.even(width * scale), media.even(height * scale))
        with Image.open(target) as image:
            image = image.convert("RGB")
            draw = ImageDraw.Draw(image)
            x1, y1, x2, y2 = (v * scale for v in evidence["box"])
            thickness = max(2, round(max(image.size) / 200))
            draw.rectangle((x1, y1, x2, y2), outline=(255, 40, 40), width=thickness)
            # Sized to stay readable where the frame is shown small: about 11 px in a 240 px wide
            # thumbnail (the report page's gallery, a search hit). The time is beside it, not in it.
            caption = f"{entity['label']} {evidence['confidence']:.2f}"
            font = ImageFont.load_default(size=max(12, round(max(image.size) / 22)))
            left, upper, right, lower = draw.textbbox((0, 0), caption, font=font)
            top = max(0, y1 - (lower - upper) - 8)
            draw.rectangle((x1, top, x1 + right - left + 8, top + lower - upper + 8), fill=(255, 40, 40))
            draw.text((x1 + 4 - left, top + 4 - upper), caption, fill=(255, 255, 255), font=font)
            image.save(target, "JPEG", quality=90)
