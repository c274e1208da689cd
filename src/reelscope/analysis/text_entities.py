"""What the followed lines of on-screen text become (ocr.py's rules 4, 5 and 7): overlays, text
entities with the consensus of their readings, and the pieces that belong to another."""

from __future__ import annotations

import difflib
import re
from collections import Counter

from reelscope.analysis import entities
from reelscope.settings import Settings

OVERLAY_MIN_CHANGES = 3  # rule 4: distinct readings, and distinct digits among them, that make an overlay
CONSENSUS_READINGS = 64  # rule 5: the most supported distinct readings compared with each other


def normalized(text: str) -> str:
    """What rule 3 compares: letters and digits, case aside (one reading may lose a space or a
    full stop that the next one keeps: "closesat", "cero." and "cero")."""
    return "".join(ch for ch in text.casefold() if ch.isalnum())


def template(key: str) -> str:
    """A normalized reading with every digit as 0: a clock's readings share it while they change."""
    return re.sub(r"\d", "0", key)


def similarity(a: str, b: str) -> float:
    return 1.0 if a == b else difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def is_overlay(readings: list[dict]) -> bool:
    """Rule 4: most readings share one shape with two digits or more, and those digits change."""
    keys = [r["key"] for r in readings]
    if len(set(keys)) < OVERLAY_MIN_CHANGES:
        return False
    shape, count = Counter(template(key) for key in keys).most_common(1)[0]
    if count < 0.5 * len(keys) or shape.count("0") < 2:
        return False
    digits = {re.sub(r"\D", "", key) for key in keys if template(key) == shape}
    return len(digits) >= max(OVERLAY_MIN_CHANGES, 0.3 * count)


def consensus(readings: list[dict]) -> dict:
    """Rule 5: the reading most like all the others (weighted by frames and confidence); of the
    readings with that text, the form read most, then the most confident. Bounded: the most supported readings are
    compared with each other, not every misreading with every other."""
    weight: dict[str, float] = {}
    for r in readings:
        weight[r["key"]] = weight.get(r["key"], 0.0) + r["frames"] * r["confidence"]
    ranked = sorted(weight, key=lambda key: (-weight[key], key))[:CONSENSUS_READINGS]
    best = max(ranked, key=lambda key: (sum(weight[other] * similarity(key, other) for other in ranked), weight[key]))
    forms: dict[str, float] = {}  # of that text, the form read most ("closes at" over "closesat")
    for r in readings:
        if r["key"] == best:
            forms[r["text"]] = forms.get(r["text"], 0.0) + r["frames"] * r["confidence"]
    return max((r for r in readings if r["key"] == best), key=lambda r: (forms[r["text"]], r["confidence"], -r["t"]))


def contains(outer: list[float], inner: list[float]) -> float:
    """The part of `inner`'s area inside `outer`."""
    width = min(outer[2], inner[2]) - max(outer[0], inner[0])
    height = min(outer[3], inner[3]) - max(outer[1], inner[1])
    area = (inner[2] - inner[0]) * (inner[3] - inner[1])
    return max(0.0, width) * max(0.0, height) / area if area > 0 else 0.0


def _part_of(piece: str, whole: str) -> bool:
    """Whether the normalized reading `piece` is a piece of `whole` ("2026" of a clock's reading,
    a caption's first word), misread a little."""
    if not piece or len(piece) >= len(whole):
        return False
    match = difflib.SequenceMatcher(None, piece, whole, autojunk=False).find_longest_match()
    return match.size >= 0.8 * len(piece)


def _owners(tracks: list[dict], overlay: list[bool], settings: Settings) -> dict[int, int | None]:
    """Rule 7: the tracks that are no entity of their own, each with the track it belongs to (None:
    a reading that never recurred, audit material only). A track inside an overlay's place while
    it shows belongs to the overlay; one inside a text's place while it shows, that reads as a
    piece of it (or has under a third of its frames: the detector boxed a part apart), to it."""
    def beside(piece: dict, whole: dict) -> bool:  # in its place, while it shows (give or take a gap)
        gap = settings.entity_gap_s
        return (piece["first"] <= whole["last"] + gap and whole["first"] <= piece["last"] + gap
                and contains(whole["span"], piece["span"]) >= 0.7)

    keys = [normalized(consensus(track["readings"])["text"]) if not overlay[i] else "" for i, track in enumerate(tracks)]
    owners: dict[int, int | None] = {}
    for i, piece in enumerate(tracks):
        if overlay[i]:
            continue
        if not keys[i]:  # no letter, no digit: no text
            owners[i] = None
            continue
        owner = next((j for j, whole in enumerate(tracks) if overlay[j] and beside(piece, whole)), None)
        if owner is None:
            owner = next((j for j, whole in enumerate(tracks) if j != i and not overlay[j] and beside(piece, whole)
                          and (whole["frames"] >= 3 * piece["frames"] or _part_of(keys[i], keys[j]))), None)
        if owner is not None or piece["frames"] < settings.ocr_min_frames:
            owners[i] = owner
    for i in owners:  # a piece of a piece belongs to the whole
        while owners[i] in owners:
            owners[i] = owners[owners[i]]
    return owners


def as_entities(tracks: list[dict], interval: float, duration: float,
                 settings: Settings) -> tuple[list[dict], list[dict], list[dict]]:
    """Tracks -> (text entities, overlay entities, readings for audit), in order of appearance."""
    tracks = sorted((track for track in tracks if track["readings"]),
                    key=lambda tr: (tr["first"], tr["best"]["box"][1], tr["best"]["box"][0]))
    overlay = [is_overlay(track["readings"]) for track in tracks]
    owners = _owners(tracks, overlay, settings)
    texts, overlays, place = [], [], {}
    for i, track in enumerate(tracks):
        if i in owners:
            continue
        end = min(track["last"] + interval, duration)
        chosen = track["best"] if overlay[i] else consensus(track["readings"])
        entity = {"kind": "overlay" if overlay[i] else "text", "label": "overlay" if overlay[i] else chosen["text"],
                  "text": track["readings"][0]["text"] if overlay[i] else chosen["text"], "animal": False,
                  "start": track["first"], "end": round(end, 3), "duration": round(end - track["first"], 3),
                  "peak_confidence": max(track["scores"]),
                  "mean_confidence": round(sum(track["scores"]) / len(track["scores"]), 3),
                  "frame_count": track["frames"], "max_instances": 1, "box": track["best"]["box"],
                  "evidence": {"t": track["best"]["t"], "box": track["best"]["box"],
                               "confidence": track["best"]["confidence"]}}
        if overlay[i]:
            entity |= {"first_reading": track["readings"][0]["text"], "last_reading": track["readings"][-1]["text"],
                       "readings": len(track["readings"])}
        (overlays if overlay[i] else texts).append((entity, i))
    for index, (entity, i) in enumerate(texts + overlays):
        entity["evidence"]["path"] = f"text/{index:04d}-{entities.slug(entity['text'][:40])}.jpg"
        place[i] = index
    # Every fresh reading, "of" the entity it counts for (an absorbed piece's: its owner's; a reading
    # that never recurred: none), the overlays' own first (wallclock.py fits the clock from those).
    readings = sorted(({"t": r["t"], "text": r["text"], "confidence": r["confidence"], "frames": r["frames"],
                        "of": place.get(owners.get(i, i)), **({"part": True} if i in owners else {})}
                       for i, track in enumerate(tracks) for r in track["readings"]),
                      key=lambda r: (r["of"] is None, r["of"] or 0, "part" in r, r["t"]))
    return [e for e, _ in texts], [e for e, _ in overlays], readings
