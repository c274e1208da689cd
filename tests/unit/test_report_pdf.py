"""report.pdf's pages: who and where on every page, no heading or lone line left at a page's end,
the title in the metadata, the same bytes for the same report."""

from __future__ import annotations

import io
import re

from pypdf import PdfReader

from reelscope.analysis.report_pdf import report_pdf
from reelscope.analysis.reports import placed_tracks

JOB = "0123456789abcdef0123456789abcdef"
HEADINGS = ("Media", "Entities", "Timeline", "Evidence frames", "Transcript")


def _report(segments: int, ranges: int = 4) -> dict:
    labels = ["person", "dog", "car", "boat"]
    entities = [{"id": i, "kind": "object", "label": labels[i % 4], "animal": i % 4 == 1, "start": 10.0 * i,
                 "end": 10.0 * i + 8, "duration": 8.0, "peak_confidence": 0.9, "mean_confidence": 0.7, "frame_count": 9,
                 "track_ids": [i],
                 "evidence": {"path": f"evidence/e{i}.jpg", "t": 10.0 * i + 1, "confidence": 0.9}}
                for i in range(ranges)]
    entities.append({"id": ranges, "kind": "text", "label": "NORTH GATE 47", "text": "NORTH GATE 47", "animal": False,
                     "start": 30.0, "end": 36.0, "duration": 6.0, "peak_confidence": 0.99, "mean_confidence": 0.98,
                     "frame_count": 6,
                     "evidence": {"path": "text/0000-north-gate-47.jpg", "t": 31.0, "confidence": 0.99}})
    tracks = placed_tracks(entities, [{"id": i, "label": e["label"], "start": e["start"], "end": e["end"]}
                                      for i, e in enumerate(entities[:ranges])])
    shots = [{"index": i, "start": 120.0 * i, "end": 120.0 * (i + 1), "starts_with": "cut" if i else "start",
              "keyframe": {"t": 120.0 * i + 60, "path": f"shots/{i:04d}.jpg"}} for i in range(5)]
    return {"source": {"file_name": "harbor walk.mp4", "sha256": "f" * 64, "size_bytes": 1000, "job_id": JOB},
            "status": "SUCCEEDED", "language": "en", "steps": {},
            "media": {"duration_s": 600.0, "has_audio": True, "size_bytes": 1000, "audio": {"codec": "aac", "sample_rate": 44100},
                      "video": {"display_width": 1280, "display_height": 720, "codec": "h264", "fps": 25}},
            "entities": entities, "tracks": tracks, "shots": shots,
            "labels": [{"label": label, "unique_count": 1, "track_ids": []} for label in sorted(set(labels[:ranges]))],
            "transcript": [{"start": 4.0 * i, "end": 4.0 * i + 3.5, "text": f"Sentence number {i} of the harbor walk."}
                           for i in range(segments)]}


def _pages(pdf: bytes) -> list[list[str]]:
    pages = PdfReader(io.BytesIO(pdf)).pages
    return [[line.strip() for line in page.extract_text().splitlines() if line.strip()] for page in pages]


def test_every_page_names_the_file_the_job_and_its_number(tmp_path):
    pdf = report_pdf(_report(120), tmp_path)
    pages = _pages(pdf)
    assert len(pages) >= 3
    for number, lines in enumerate(pages, 1):
        assert f"harbor walk.mp4 \u00b7 job {JOB}" in " ".join(lines), number
        assert f"page {number} of {len(pages)}" in " ".join(lines), number
    assert PdfReader(io.BytesIO(pdf)).metadata.title == "reelscope report: harbor walk.mp4"
    assert report_pdf(_report(120), tmp_path) == pdf  # the same report, the same bytes


def test_no_heading_ends_a_page_and_no_page_holds_a_lone_line(tmp_path):
    """Transcripts of 70 to 80 segments (75 would leave one line alone on the last page) and 30 to
    50 entity ranges (which push each heading after them down the page, past a page's foot)."""
    cases = [(segments, 4) for segments in range(70, 81)] + [(12, ranges) for ranges in range(30, 51)]
    for segments, ranges in cases:
        pages = _pages(report_pdf(_report(segments, ranges), tmp_path))
        for lines in pages:
            body = [line for line in lines if not re.search(r"page \d+ of \d+", line) and "job " + JOB not in line]
            assert body[-1] not in HEADINGS, (segments, ranges, body[-3:])
        last = [line for line in pages[-1] if line.startswith("[")]
        assert len(last) >= 2, (segments, ranges, pages[-1])


def test_a_track_no_kept_range_holds_is_not_drawn(tmp_path):
    """A detection dropped by the flicker filter still has its track in tracks.json; the timeline
    draws only the tracks of kept ranges (as the report page does)."""
    report = _report(12)
    stray = {"id": 99, "label": "person", "start": 300.0, "end": 302.0}
    with_stray = {**report, "tracks": placed_tracks(report["entities"], report["tracks"] + [stray])}
    assert with_stray["tracks"][-1]["row"] is None
    assert report_pdf(with_stray, tmp_path) == report_pdf(report, tmp_path)


def test_an_hour_of_footage_is_a_bounded_briefing(tmp_path):
    """An hour's report as a clock and busy footage leave it: 3,000 object ranges of 5 labels, 1,500
    on-screen texts, an overlay, 600 shots, 900 transcript segments. The PDF shows the longest
    ranges of each kind with a few evidence frames, 24 keyframes and the whole transcript."""
    from PIL import Image

    report = _report(900, ranges=0)
    labels = ["person", "dog", "car", "boat", "bus"]
    objects = [{"id": i, "kind": "object", "label": labels[i % 5], "animal": False, "start": 1.2 * i, "end": 1.2 * i + 1 + i % 7,
                "duration": 1.0 + i % 7, "peak_confidence": 0.9, "mean_confidence": 0.7, "frame_count": 2, "track_ids": [i],
                "evidence": {"path": f"evidence/{i:04d}.jpg", "t": 1.2 * i, "confidence": 0.9}} for i in range(3000)]
    texts = [{"id": 3000 + i, "kind": "text", "label": f"caption {i}", "text": f"caption {i}", "animal": False,
              "start": 2.4 * i, "end": 2.4 * i + 2, "duration": 2.0, "peak_confidence": 0.9, "mean_confidence": 0.9,
              "frame_count": 2, "evidence": {"path": f"text/{i:04d}.jpg", "t": 2.4 * i, "confidence": 0.9}} for i in range(1500)]
    overlay = {"id": 4500, "kind": "overlay", "label": "overlay", "text": "2023-11-14 22:13:20", "animal": False,
               "first_reading": "2023-11-14 22:13:20", "last_reading": "2023-11-14 23:13:19", "start": 0.0, "end": 3600.0,
               "duration": 3600.0, "peak_confidence": 0.99, "mean_confidence": 0.98, "frame_count": 3600,
               "evidence": {"path": "text/1500.jpg", "t": 10.0, "confidence": 0.99}}
    shots = [{"index": i, "start": 6.0 * i, "end": 6.0 * (i + 1), "starts_with": "cut" if i else "start",
              "keyframe": {"t": 6.0 * i + 3, "path": f"shots/{i:04d}.jpg"}} for i in range(600)]
    voices = [{"id": f"S{i + 1}", "name": f"Voice {i + 1}", "talk_time_s": 40.0 + i, "turns": 3, "first_s": float(i)}
              for i in range(40)]  # noisy hours can cluster into dozens of voices
    for i, segment in enumerate(report["transcript"]):
        segment["speaker"] = f"S{i % 40 + 1}"
    report |= {"entities": objects + texts + [overlay], "shots": shots, "tracks": [], "speakers": voices,
               "media": {**report["media"], "duration_s": 3600.0},
               "wall_clock": {"start": "2023-11-14T22:13:20", "source": {"fitted": 3500},
                              "pieces": [{"video_start": 0.0, "video_end": 3600.0, "wall_start": "2023-11-14T22:13:20"}]}}
    for i, e in enumerate(report["entities"] + [s["keyframe"] for s in shots]):
        path = tmp_path / (e["evidence"]["path"] if "evidence" in e else e["path"])
        path.parent.mkdir(exist_ok=True)
        Image.new("RGB", (64, 36), (i % 256, i // 256 % 256, 7)).save(path)  # each picture its own
    pdf = report_pdf(report, tmp_path)
    reader = PdfReader(io.BytesIO(pdf))
    pictures = sum(len(page.images) for page in reader.pages)
    assert pictures == 6 * 2 + 1 + 24  # two frames of each of 5 labels and of text, the one overlay; 24 keyframes
    assert len(reader.pages) <= 45, len(reader.pages)
    words = " ".join(" ".join(lines) for lines in _pages(pdf))
    assert "Sentence number 899 of the harbor walk." in words  # the whole transcript
    assert "2023-11-14 22:13:20" in words and "2023-11-14 23:13:19" in words  # wall clock, overlay readings
    assert "The 49 longest of 4501 ranges" in words
    assert "Voice 40" in words and "Voice 20 " not in words and "and 20 more (report.json" in words  # who talks most
    assert "Voice 1: Sentence number 0 of" in words  # transcript lines named by their speaker


def test_a_character_the_font_cannot_draw_is_a_question_mark(tmp_path, caplog):
    """A reading in a script DejaVu Sans lacks (Chinese) prints "?" where it stood, and fpdf has no
    missing glyph to warn about; accents and the middle dot the font has are kept."""
    report = _report(3)
    report["entities"][-1].update(label="图 GATE é", text="图 GATE é")
    report["transcript"][0]["text"] = "Café 图书馆 opens."
    with caplog.at_level("WARNING", logger="fpdf"):
        pdf = report_pdf(report, tmp_path)
    assert not [r for r in caplog.records if "missing" in r.getMessage()]
    words = " ".join(" ".join(page) for page in _pages(pdf))
    assert "? GATE é" in words and "Café ??? opens." in words and "图" not in words


def test_track_rows_are_placed_once_for_the_page_and_the_pdf():
    """Overlapping tracks of one label go to the first free row (three at most); another label's
    lane has rows of its own; a track that no kept range holds has none."""
    objects = [{"label": "person", "track_ids": [1, 2, 3, 4, 5]}, {"label": "dog", "track_ids": [6]}]
    spans = {1: (0, 10), 2: (2, 6), 3: (7, 9), 4: (3, 8), 5: (4, 5), 6: (0, 10), 7: (0, 1)}
    tracks = [{"id": i, "label": "dog" if i == 6 else "person", "start": float(a), "end": float(b)}
              for i, (a, b) in spans.items()]
    assert {t["id"]: t["row"] for t in placed_tracks(objects, tracks)} == {1: 0, 2: 1, 3: 1, 4: 2, 5: 2, 6: 0, 7: None}
