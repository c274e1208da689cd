"""Tracks (tracks.py) from hand-built detections through ultralytics' ByteTrack: ids and counts we can derive."""

from __future__ import annotations

from reelscope.analysis.entities import aggregate, label_counts
from reelscope.analysis.tracks import link, track_of
from reelscope.settings import Settings


def det(label: str, box, confidence: float = 0.9) -> dict:
    return {"label": label, "class_id": 0, "confidence": confidence, "box": [float(v) for v in box], "animal": False}


def seq(frames: list[list[dict]], fps: float = 1.0) -> dict:
    return {"sample_fps": fps, "duration_s": len(frames) / fps, "min_confidence": 0.25, "frame_width": 1280,
            "frame_height": 720, "frames": [{"t": round(i / fps, 3), "detections": dets} for i, dets in enumerate(frames)]}


A = [det("person", (100, 100, 300, 600)), det("person", (700, 120, 900, 640))]  # a still with two people
B = [det("person", (400, 200, 560, 700))]  # another still, one person elsewhere


def ids(tracks: dict) -> list[tuple[str, float, float, int]]:
    return [(t["label"], t["start"], t["end"], t["frame_count"]) for t in tracks["tracks"]]


def test_two_people_standing_still_are_two_tracks_for_the_whole_time():
    tracks = link(seq([A] * 6), Settings())
    assert ids(tracks) == [("person", 0.0, 6.0, 6), ("person", 0.0, 6.0, 6)]
    assert [t["id"] for t in tracks["tracks"]] == [0, 1]


def test_a_moving_object_keeps_its_id():
    walking = [[det("dog", (80 + 90 * i, 300, 280 + 90 * i, 450))] for i in range(10)]  # 90 px a sample, 200 wide
    assert ids(link(seq(walking), Settings())) == [("dog", 0.0, 10.0, 10)]


def test_a_gap_up_to_track_gap_s_keeps_the_id_and_a_longer_one_starts_a_new_track():
    two_missed = [A[:1], A[:1], [], [], A[:1], A[:1]]
    assert ids(link(seq(two_missed), Settings())) == [("person", 0.0, 6.0, 4)]
    three_missed = [A[:1], A[:1], [], [], [], A[:1], A[:1]]
    assert ids(link(seq(three_missed), Settings())) == [("person", 0.0, 2.0, 2), ("person", 5.0, 7.0, 2)]
    assert ids(link(seq(three_missed), Settings(track_gap_s=3.0))) == [("person", 0.0, 7.0, 4)]


def test_a_still_then_another_then_the_first_again_counts_what_was_seen():
    # A (3 samples), B for 1 sample, A again: A's two people were lost for 1 s and are found where they were
    short = seq([A] * 3 + [B] + [A] * 3)
    tracks = link(short, Settings())
    ranges = aggregate(short, Settings(), track_of=track_of(tracks))
    assert label_counts(ranges) == [{"label": "person", "unique_count": 3, "track_ids": [0, 1, 2]}]
    # B for 3 samples: longer than track_gap_s, so A's people come back as new tracks: 2 + 1 + 2
    long = seq([A] * 3 + [B] * 3 + [A] * 3)
    ranges = aggregate(long, Settings(), track_of=track_of(link(long, Settings())))
    assert label_counts(ranges)[0]["unique_count"] == 5


def test_a_single_sighting_is_a_track_of_its_own_and_labels_never_share_a_track():
    frames = [[det("cat", (10, 10, 100, 100))], [det("person", (10, 10, 100, 100))], [det("person", (10, 10, 100, 100))]]
    assert ids(link(seq(frames), Settings())) == [("cat", 0.0, 1.0, 1), ("person", 1.0, 3.0, 2)]


def test_a_track_that_continues_across_a_cut_keeps_its_range_whole():
    detections = seq([A[:1]] * 6)
    linked = track_of(link(detections, Settings()))
    assert [(e["start"], e["end"]) for e in aggregate(detections, Settings(), cuts=[3.0])] == [(0.0, 3.0), (3.0, 6.0)]
    assert [(e["start"], e["end"], e["track_ids"]) for e in aggregate(detections, Settings(), [3.0], linked)] == \
           [(0.0, 6.0, [0])]
