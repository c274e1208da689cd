"""The timeline rules (entities.py docstring) on hand-built detection sequences."""

from __future__ import annotations

import pytest

from reelscope.analysis.entities import aggregate
from reelscope.settings import Settings


def det(label: str, confidence: float, box=(10, 10, 50, 50), animal=False) -> dict:
    return {"label": label, "class_id": 0, "confidence": confidence, "box": list(box), "animal": animal}


def seq(fps: float, duration: float, hits: dict[float, list[dict]]) -> dict:
    """Every sampled frame of `duration` at `fps`; `hits` maps a frame time to its detections."""
    count = int(round(duration * fps))
    return {"sample_fps": fps, "duration_s": duration,
            "frames": [{"t": round(i / fps, 3), "detections": hits.get(round(i / fps, 3), [])} for i in range(count)]}


def spans(ranges):
    return [(r["label"], r["start"], r["end"]) for r in ranges]


def test_consecutive_hits_form_one_range_ending_one_interval_after_the_last():
    detections = seq(4, 6.0, {t: [det("person", 0.8)] for t in (2.0, 2.25, 2.5, 2.75, 3.0, 3.25, 3.5, 3.75)})
    assert spans(aggregate(detections, Settings())) == [("person", 2.0, 4.0)]


def test_gap_tolerance_bridges_one_missed_sample_at_1fps_but_not_two():
    bridged = seq(1, 10.0, {t: [det("dog", 0.9, animal=True)] for t in (0.0, 1.0, 3.0)})
    assert spans(aggregate(bridged, Settings())) == [("dog", 0.0, 4.0)]
    split = seq(1, 10.0, {t: [det("dog", 0.9, animal=True)] for t in (0.0, 1.0, 4.0)})
    assert spans(aggregate(split, Settings())) == [("dog", 0.0, 2.0), ("dog", 4.0, 5.0)]
    assert spans(aggregate(split, Settings(entity_gap_s=2.0))) == [("dog", 0.0, 5.0)]


def test_flickers_are_dropped_by_duration_and_by_peak_confidence():
    flicker = seq(5, 4.0, {1.0: [det("cat", 0.95)]})  # one sample at 5 fps lasts 0.2 s
    assert aggregate(flicker, Settings()) == []
    one_second = seq(1, 4.0, {1.0: [det("cat", 0.95)]})  # one sample at 1 fps lasts 1 s
    assert spans(aggregate(one_second, Settings())) == [("cat", 1.0, 2.0)]
    weak = seq(1, 4.0, {t: [det("cat", 0.4)] for t in (0.0, 1.0, 2.0)})
    assert aggregate(weak, Settings()) == []
    assert spans(aggregate(weak, Settings(entity_min_peak_confidence=0.3))) == [("cat", 0.0, 3.0)]


def test_range_statistics_and_evidence():
    hits = {
        0.0: [det("person", 0.6)],
        1.0: [det("person", 0.9, box=(1, 2, 3, 4)), det("person", 0.5), det("person", 0.3)],
        2.0: [det("person", 0.9, box=(5, 6, 7, 8))],  # ties the peak later: the earliest wins
        3.0: [det("person", 0.6)],
    }
    (entity,) = aggregate(seq(1, 3.5, hits), Settings())
    assert (entity["start"], entity["end"], entity["duration"]) == (0.0, 3.5, 3.5)  # clipped to the media
    assert entity["peak_confidence"] == 0.9
    assert entity["mean_confidence"] == pytest.approx((0.6 + 0.9 + 0.9 + 0.6) / 4, abs=0.001)
    assert (entity["frame_count"], entity["max_instances"]) == (4, 3)
    assert entity["evidence"] == {"t": 1.0, "box": [1, 2, 3, 4], "confidence": 0.9,
                                  "path": "evidence/0000-person.jpg"}


def test_labels_are_separate_ordered_and_flagged():
    hits = {t: [det("dog", 0.8, animal=True)] for t in (3.0, 4.0)}
    hits.update({t: hits.get(t, []) + [det("traffic light", 0.7)] for t in (0.0, 1.0, 4.0)})
    ranges = aggregate(seq(1, 6.0, hits), Settings())
    assert spans(ranges) == [("traffic light", 0.0, 2.0), ("dog", 3.0, 5.0), ("traffic light", 4.0, 5.0)]
    assert [r["animal"] for r in ranges] == [False, True, False]
    assert [r["id"] for r in ranges] == [0, 1, 2]
    assert ranges[0]["evidence"]["path"] == "evidence/0000-traffic-light.jpg"


def test_a_hard_cut_ends_a_range_and_hits_across_it_never_join():
    hits = {t: [det("person", 0.9)] for t in (0.0, 1.0, 2.0, 3.0, 4.0, 5.0)}
    detections = seq(1, 8.0, hits)
    assert spans(aggregate(detections, Settings())) == [("person", 0.0, 6.0)]
    # a cut at 2.5 s: the range before it ends there (not at 3.0), the next starts at the first hit after it
    assert spans(aggregate(detections, Settings(), cuts=[2.5])) == [("person", 0.0, 2.5), ("person", 3.0, 6.0)]
    # a hit at the cut's own time belongs to the new shot
    assert spans(aggregate(detections, Settings(), cuts=[3.0])) == [("person", 0.0, 3.0), ("person", 3.0, 6.0)]
    # cuts where no range spans them change nothing
    assert spans(aggregate(detections, Settings(), cuts=[6.5, 7.0])) == [("person", 0.0, 6.0)]
