"""A job's exports: report.json (schema-versioned), entities.csv and transcript.csv (report.pdf: report_pdf.py).

Same artifacts in, same bytes out: JSON with sorted keys, floats at fixed precision, CSV with
"\\n" line ends, and a PDF whose dates and producer are fixed (no wall clock, no random id).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from reelscope.analysis import speakers as speakers_mod
from reelscope.analysis import wallclock
from reelscope.artifacts import read_json
from reelscope.status import Status

REPORT_SCHEMA = "reelscope.report/1"
ENTITY_COLUMNS = ["id", "kind", "label", "animal", "start", "end", "duration", "peak_confidence", "mean_confidence",
                  "frame_count", "max_instances", "evidence_path", "text"]


# What the exports read besides media.json: each step's JSON artifact (read when the step succeeded)
# and the pictures the PDF shows (report_pdf.pdf_pictures). The index step downloads exactly these.
STEP_ARTIFACTS = {"transcribe": "transcript.raw.json", "speakers": "speakers.json", "translate": "transcript.en.json",
                  "entities": "entities.json", "downscale": "renditions.json",
                  "shots": "shots.json", "tracks": "tracks.json", "ocr": "ocr.json"}


def build_report(out_dir: Path, source: dict, steps: dict[str, dict], status: str, names: dict | None = None) -> dict:
    """One JSON document with what an analyst reads: media, status, entities (objects, on-screen
    text, overlays), the wall clock if a burned-in one was read, tracks, shots, the speakers (with
    the `names` an analyst gave them) and the transcript, each segment with its speaker."""
    out_dir = Path(out_dir)
    media = read_json(out_dir / "media.json")

    def delivered(step: str) -> dict | None:  # a step's JSON artifact, if the step succeeded
        path = out_dir / STEP_ARTIFACTS[step]
        return read_json(path) if steps.get(step, {}).get("status") == Status.SUCCEEDED and path.exists() else None

    transcript, entities, renditions = delivered("transcribe"), delivered("entities"), delivered("downscale")
    shots, tracks, texts = delivered("shots"), delivered("tracks"), delivered("ocr")
    voices = delivered("speakers") or {}
    segments = speakers_mod.attribute((transcript or {}).get("segments", []), voices.get("turns", []))
    english = speakers_mod.attribute((delivered("translate") or {}).get("segments", []), voices.get("turns", []))
    # One list of entities: objects (entities.json, ids as there), then on-screen text (numbered on)
    objects = [{**e, "kind": "object"} for e in (entities or {}).get("entities", [])]
    on_screen = (texts or {}).get("texts", []) + (texts or {}).get("overlays", [])  # in ocr.json's "of" order
    found = objects + [{**t, "id": len(objects) + i} for i, t in enumerate(on_screen)]
    return {
        "schema": REPORT_SCHEMA,
        "source": source,
        "status": status,
        "steps": steps,
        "media": media,
        "language": transcript["language"] if transcript else None,
        "speakers": named(voices.get("speakers", []), names or {}),
        "languages": (transcript or {}).get("languages", []),
        "transcript": [{"id": s["id"], "start": s["start"], "end": s["end"], "text": s["text"], "speaker": s.get("speaker"),
                        "language": s.get("language")} for s in segments],
        "translation": [{"id": s["id"], "start": s["start"], "end": s["end"], "text": s["text"], "speaker": s.get("speaker"),
                         "source_language": s["source_language"]} for s in english],
        "entities": found,
        "wall_clock": (texts or {}).get("wall_clock"),
        "timeline_rules": (entities or {}).get("rules"),
        "shots": (shots or {}).get("shots", []),
        "tracks": placed_tracks(objects, [{k: t[k] for k in ("id", "label", "start", "end", "frame_count", "peak_confidence")}
                                          for t in (tracks or {}).get("tracks", [])]),
        "labels": (entities or {}).get("labels", []),
        "renditions": (renditions or {}).get("renditions", []),
        "poster": (renditions or {}).get("poster"),
        "thumbnails": (renditions or {}).get("thumbnails", []),
    }


def _csv(rows: list[list]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows(rows)
    return buffer.getvalue()


def wall_times(report: dict, *times: float) -> list[str]:
    """The wall-clock columns' values: what the burned-in clock showed at each time (none without one)."""
    return [wallclock.wall_time(report.get("wall_clock"), t) for t in times] if report.get("wall_clock") else []


def _wall_columns(report: dict) -> list[str]:
    return ["wall_start", "wall_end"] if report.get("wall_clock") else []


def entity_text(e: dict) -> str:
    """What an entity reads: a text's reading, an overlay's first and last readings."""
    if e["kind"] == "overlay":
        return f"{e['first_reading']} \u2026 {e['last_reading']}"
    return e.get("text", "")


def entities_csv(report: dict) -> str:
    return _csv([ENTITY_COLUMNS + _wall_columns(report)] + [[
        e["id"], e["kind"], e["label"], str(e["animal"]).lower(), f"{e['start']:.3f}", f"{e['end']:.3f}", f"{e['duration']:.3f}",
        f"{e['peak_confidence']:.3f}", f"{e['mean_confidence']:.3f}", e["frame_count"], e["max_instances"],
        e["evidence"]["path"], entity_text(e), *wall_times(report, e["start"], e["end"])] for e in report["entities"]])


def named(speakers: list[dict], names: dict[str, str]) -> list[dict]:
    """The speakers, each with the name an analyst gave it, else its id (report.json's, the API's)."""
    return [{**v, "name": names.get(v["id"]) or v["id"]} for v in speakers]


def speaker_names(report: dict) -> dict[str, str]:
    """Each speaker's id to the name shown: the analyst's, else the id."""
    return {v["id"]: v["name"] for v in report.get("speakers", [])}


def transcript_csv(report: dict) -> str:
    names = speaker_names(report)
    return _csv([["segment", "start", "end", "speaker", "speaker_name", "language", "text"] + _wall_columns(report)] + [
        [s["id"], f"{s['start']:.3f}", f"{s['end']:.3f}", s.get("speaker") or "", names.get(s.get("speaker"), ""),
         s.get("language") or "", s["text"], *wall_times(report, s["start"], s["end"])]
        for s in report["transcript"]])


def placed_tracks(objects: list[dict], tracks: list[dict], rows: int = 3) -> list[dict]:
    """The tracks, each with the `row` its label's timeline lane draws it in (the page and the PDF
    both draw these): the first row free at its start, the last row taking the overflow, so tracks
    that overlap in time are drawn apart. A track no kept range holds (a flicker's) gets null."""
    held = {i for e in objects for i in e.get("track_ids", [])}
    ends: dict[str, list[float]] = {}
    row_of: dict[int, int] = {}
    for track in sorted((t for t in tracks if t["id"] in held), key=lambda t: (t["start"], t["id"])):
        lane = ends.setdefault(track["label"], [])
        row = min(next((i for i, end in enumerate(lane) if end <= track["start"]), len(lane)), rows - 1)
        if row < len(lane):
            lane[row] = max(lane[row], track["end"])
        else:
            lane.append(track["end"])
        row_of[track["id"]] = row
    return [{**t, "row": row_of.get(t["id"])} for t in tracks]
