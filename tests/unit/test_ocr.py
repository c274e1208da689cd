"""On-screen text rules (ocr.py docstring) that need no model: line merging and appearances."""

from __future__ import annotations

from reelscope.analysis.ocr import _as_entities, _extend, merge_lines
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


def test_a_line_read_in_consecutive_samples_is_one_appearance_with_its_surest_reading():
    appearances: list[dict] = []
    readings = [(1.0, "NORTH GATE 47", 0.91), (2.0, "NORTH GATE 47", 0.99), (3.0, "north  gate 47", 0.93),
                (5.0, "NORTH GATE 47", 0.95)]  # 4.0 missed: a silence of 1 s is bridged
    for t, text, confidence in readings:
        _extend(appearances, t, [80, 500, 420, 550], text, confidence, 1.0, Settings())
    (text,) = _as_entities(appearances, 1.0, 10.0)
    assert (text["text"], text["start"], text["end"], text["frame_count"]) == ("NORTH GATE 47", 1.0, 6.0, 4)
    assert text["evidence"]["t"] == 2.0 and text["kind"] == "text"
    assert text["evidence"]["path"] == "text/0000-north-gate-47.jpg"


def test_the_same_text_elsewhere_or_after_a_long_silence_is_another_appearance():
    appearances: list[dict] = []
    _extend(appearances, 1.0, [80, 500, 420, 550], "EXIT", 0.9, 1.0, Settings())
    _extend(appearances, 2.0, [800, 100, 1000, 150], "EXIT", 0.9, 1.0, Settings())  # another sign
    _extend(appearances, 6.0, [80, 500, 420, 550], "EXIT", 0.9, 1.0, Settings())  # 4 s later
    assert [(t["start"], t["end"]) for t in _as_entities(appearances, 1.0, 10.0)] == [(1.0, 2.0), (2.0, 3.0), (6.0, 7.0)]
