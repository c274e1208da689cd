"""On-screen text rules (ocr.py docstring) that need no model: line merging and appearances."""

from __future__ import annotations

from reelscope.analysis.ocr import _extend, merge_lines
from reelscope.analysis.text_entities import as_entities, consensus
from reelscope.settings import Settings


def test_pieces_on_one_line_merge_left_to_right_and_other_lines_stay_apart():
    pieces = [([300, 500, 420, 548], "GATE 47", 0.97), ([80, 502, 270, 550], "NORTH", 0.99),
              ([700, 60, 1060, 90], "Harbor closes at 18:30", 0.95),
              ([80, 600, 270, 648], "below", 0.9)]  # under NORTH: another line
    lines = sorted(merge_lines(pieces), key=lambda line: line[0][1])
    assert [(box, text) for box, text, _ in lines] == [
        ([700, 60, 1060, 90], "Harbor closes at 18:30"), ([80, 500, 420, 550], "NORTH GATE 47"),
        ([80, 600, 270, 648], "below")]
    assert lines[1][2] == 0.97  # a line is as sure as its least sure piece


def test_words_far_apart_or_of_other_sizes_are_not_one_line():
    far = [([0, 0, 100, 40], "LEFT", 0.9), ([600, 0, 700, 40], "RIGHT", 0.9)]
    assert len(merge_lines(far)) == 2
    sizes = [([0, 0, 100, 40], "BIG", 0.9), ([110, 10, 160, 25], "small", 0.9)]
    assert len(merge_lines(sizes)) == 2


def follow(readings, box=(80, 500, 420, 550), fresh=True):
    """Tracks of (t, text, confidence) readings at one place (or (t, text, confidence, box))."""
    tracks: list[dict] = []
    for t, text, confidence, *where in readings:
        _extend(tracks, t, list(where[0] if where else box), text, confidence, fresh, 1.0, Settings())
    return tracks


def test_a_line_read_in_consecutive_samples_is_one_appearance_with_its_surest_reading():
    readings = [(1.0, "NORTH GATE 47", 0.91), (2.0, "NORTH GATE 47", 0.99), (3.0, "north  gate 47", 0.93),
                (5.0, "NORTH GATE 47", 0.95)]  # 4.0 missed: a silence of 1 s is bridged
    (text,), overlays, audit = as_entities(follow(readings), 1.0, 10.0, Settings())
    assert (text["text"], text["start"], text["end"], text["frame_count"]) == ("NORTH GATE 47", 1.0, 6.0, 4)
    assert text["evidence"]["t"] == 2.0 and text["kind"] == "text" and overlays == []
    assert text["evidence"]["path"] == "text/0000-north-gate-47.jpg"
    assert [r["t"] for r in audit] == [1.0, 2.0, 3.0, 5.0] and {r["of"] for r in audit} == {0}


def test_the_same_text_elsewhere_or_after_a_long_silence_is_another_appearance():
    tracks = follow([(1.0, "EXIT", 0.9), (2.0, "EXIT", 0.9, [800, 100, 1000, 150]),  # another sign
                     (6.0, "EXIT", 0.9)])  # 4 s later
    texts, _, _ = as_entities(tracks, 1.0, 10.0, Settings(ocr_min_frames=1))
    assert [(t["start"], t["end"]) for t in texts] == [(1.0, 2.0), (2.0, 3.0), (6.0, 7.0)]


def test_a_caption_misread_many_ways_is_one_text_with_the_consensus_reading():
    truth = "Harbor closes at 18:30"
    misread = ["Harbor closes at 18:30", "Harborclosesat 18:30", "Harbor closes at", "Harbor cioses at 18:30",
               "Harbor closes at 18.30", "Harbor closes at 18:30", "Harb0r closes at 18:30", "Harbor closes a 18:30",
               "Harbor closes at 18:30.", "Harbor closes at 18:30"]
    readings = [(float(t), text, 0.95 if text == truth else 0.97) for t, text in enumerate(misread)]
    (text,), overlays, _ = as_entities(follow(readings), 1.0, 20.0, Settings())
    assert text["text"] == truth and (text["start"], text["end"]) == (0.0, 10.0) and overlays == []


def test_another_caption_at_the_same_place_is_another_text():
    readings = [(1.0, "Harbor closes at 18:30", 0.9), (2.0, "Harbor closes at 18:30", 0.9),
                (3.0, "Ferries leave from pier nine", 0.9), (4.0, "Ferries leave from pier nine", 0.9)]
    texts, _, _ = as_entities(follow(readings), 1.0, 10.0, Settings())
    assert [(t["text"], t["start"], t["end"]) for t in texts] == [
        ("Harbor closes at 18:30", 1.0, 3.0), ("Ferries leave from pier nine", 3.0, 5.0)]


def test_a_clock_is_one_overlay_with_its_first_and_last_readings_not_one_text_a_second():
    readings = [(float(t), f"2023-11-14 22:13:{20 + t:02d}", 0.93) for t in range(30)]
    readings[5] = (5.0, "2023-11-14 22:13:2S", 0.7)  # a misread
    texts, (clock,), audit = as_entities(follow(readings, box=(20, 20, 400, 50)), 1.0, 30.0, Settings())
    assert texts == []
    assert (clock["kind"], clock["label"], clock["start"], clock["end"]) == ("overlay", "overlay", 0.0, 30.0)
    assert (clock["first_reading"], clock["last_reading"]) == ("2023-11-14 22:13:20", "2023-11-14 22:13:49")
    assert clock["readings"] == 30 and len(audit) == 30 and clock["evidence"]["path"].startswith("text/0000-")


def test_a_caption_with_a_misread_digit_is_no_overlay():
    readings = [(float(t), "GATE 47", 0.9) for t in range(20)] + [(20.0, "GATE 41", 0.8), (21.0, "GATE 17", 0.8)]
    texts, overlays, _ = as_entities(follow(readings), 1.0, 30.0, Settings())
    assert [t["text"] for t in texts] == ["GATE 47"] and overlays == []


def test_a_piece_of_a_caption_boxed_apart_for_a_moment_is_no_text_of_its_own():
    whole, piece = (80, 500, 900, 550), (600, 500, 900, 550)
    readings = [(float(t), "Harbor closes at 18:30", 0.9, whole) for t in range(12)] + [(5.0, "18:30", 0.9, piece)]
    texts, _, _ = as_entities(follow(sorted(readings, key=lambda r: r[0])), 1.0, 20.0, Settings())
    assert [t["text"] for t in texts] == ["Harbor closes at 18:30"]


def test_a_frame_not_read_again_extends_the_last_reading():
    tracks = follow([(1.0, "EXIT", 0.9)])
    _extend(tracks, 2.0, [80, 500, 420, 550], "EXIT", 0.9, False, 1.0, Settings())
    (text,), _, audit = as_entities(tracks, 1.0, 10.0, Settings())
    assert text["frame_count"] == 2 and [(r["t"], r["frames"]) for r in audit] == [(1.0, 2)]


def test_consensus_is_bounded_in_distinct_readings():
    readings = [{"t": float(t), "text": f"caption {t}", "key": f"caption{t}", "confidence": 0.9, "frames": 1}
                for t in range(5000)]
    assert consensus(readings)["text"].startswith("caption")


def test_a_reading_that_never_recurs_or_holds_no_letter_is_audit_material_only():
    tracks = follow([(1.0, "NORTH GATE 47", 0.9), (2.0, "NORTH GATE 47", 0.9), (3.0, "中", 0.9, [900, 80, 930, 110]),
                     (4.0, "++", 0.8, [50, 50, 90, 70]), (5.0, "++", 0.8, [50, 50, 90, 70])])
    texts, _, audit = as_entities(tracks, 1.0, 10.0, Settings())
    assert [t["text"] for t in texts] == ["NORTH GATE 47"]
    assert [(r["text"], r["of"]) for r in audit] == [("NORTH GATE 47", 0), ("NORTH GATE 47", 0), ("中", None), ("++", None),
                                                    ("++", None)]


def test_pieces_of_a_clock_and_of_a_caption_read_in_their_place_belong_to_them():
    """Over a busy picture the detector boxes pieces of a clock ("2026", ":02") and of a caption
    (its first word) apart, for many frames: they belong to what stands there while it shows."""
    clock, caption = (20, 20, 400, 50), (300, 600, 900, 640)
    readings = [(float(t), f"2026-03-02 09:15:{t:02d}", 0.95, clock) for t in range(40)]
    readings += [(float(t), "2026", 0.99, (20, 20, 90, 50)) for t in range(10, 30)]  # alongside the clock's own track
    readings += [(float(t), ":02", 0.9, (160, 20, 200, 50)) for t in (12, 13)]
    readings += [(float(t), "Loading dock camera three", 0.93, caption) for t in range(5, 11)]
    readings += [(float(t), "Loading", 0.97, (300, 600, 440, 640)) for t in range(5, 9)]
    texts, overlays, audit = as_entities(follow(sorted(readings, key=lambda r: r[0])), 1.0, 40.0, Settings())
    assert [t["text"] for t in texts] == ["Loading dock camera three"] and len(overlays) == 1
    assert {r["of"] for r in audit if r["text"] in ("2026", ":02")} == {1}  # the overlay's, for audit
    assert {r["of"] for r in audit if r["text"] == "Loading"} == {0} and all("part" in r for r in audit if r["text"] == "Loading")
