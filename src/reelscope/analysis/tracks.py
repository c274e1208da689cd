"""Detections linked across sampled frames into tracks: one object, one id, while it stays in view.

ultralytics' ByteTrack does the linking (a Kalman filter predicts each box, boxes are matched by
overlap); one tracker runs per label, so a track never changes label. Rules (settings in brackets):
  1. A track survives missing samples for up to [track_gap_s]: at 1 fps and 2.0 s, an object
     missed in two samples in a row keeps its id when it is seen again where it was expected.
  2. Every detection belongs to exactly one track; one seen in a single sample is a track of one.
  3. Track ids are numbered by first appearance (time, then label, then box), so reruns agree.
A track's range runs from its first sample to its last + one sample interval, like an entity's.
"""

from __future__ import annotations

from types import SimpleNamespace

from reelscope.settings import Settings

_EPSILON = 1e-6


def link(detections: dict, settings: Settings) -> dict:
    """tracks.json content: every track with its samples, as (time, index in that frame's detections)."""
    import numpy as np
    from ultralytics.engine.results import Boxes
    from ultralytics.trackers.basetrack import TrackState
    from ultralytics.trackers.byte_tracker import BYTETracker

    fps, frames = detections["sample_fps"], sorted(detections["frames"], key=lambda f: f["t"])
    interval, duration = 1.0 / fps, detections["duration_s"]
    floor = detections["min_confidence"]  # every detection may start or continue a track
    options = SimpleNamespace(track_high_thresh=floor, track_low_thresh=min(0.1, floor), new_track_thresh=floor,
                              track_buffer=int(settings.track_gap_s * fps + _EPSILON), match_thresh=0.8,
                              fuse_score=True)
    shape = (detections["frame_height"], detections["frame_width"])
    owner: dict[tuple[int, int], tuple[str, int]] = {}  # (frame, detection) -> (label, the tracker's id)
    for label in sorted({d["label"] for f in frames for d in f["detections"]}):
        tracker = BYTETracker(options)
        for number, frame in enumerate(frames):
            mine = [j for j, d in enumerate(frame["detections"]) if d["label"] == label]
            rows = np.array([[*frame["detections"][j]["box"], frame["detections"][j]["confidence"], 0] for j in mine],
                            np.float32).reshape(-1, 6)
            tracker.update(Boxes(rows, shape))
            # ultralytics 8.4 marks a track removed but leaves it among the lost ones for one more
            # sample, where it can still be found again: track_gap_s would be one sample longer.
            tracker.lost_stracks = [t for t in tracker.lost_stracks if t.state != TrackState.Removed]
            # tracked_stracks also holds tracks born this sample and not yet confirmed: their first sample counts
            for track in tracker.tracked_stracks:
                if track.end_frame == tracker.frame_id:
                    owner[(number, mine[int(track.idx)])] = (label, int(track.track_id))
    members: dict[tuple[str, int], list[tuple[int, int]]] = {}
    for number, frame in enumerate(frames):
        for j, det in enumerate(frame["detections"]):
            key = owner.get((number, j), (det["label"], -1 - len(members)))  # unlinked: a track of its own
            members.setdefault(key, []).append((number, j))
    tracks = []
    for (label, _), hits in members.items():
        found = [frames[number]["detections"][j] for number, j in hits]
        first, last = frames[hits[0][0]]["t"], frames[hits[-1][0]]["t"]
        tracks.append({"label": label, "start": first, "end": round(min(last + interval, duration), 3),
                       "frame_count": len(hits), "peak_confidence": max(d["confidence"] for d in found),
                       "first_box": found[0]["box"], "samples": [[frames[number]["t"], j] for number, j in hits]})
    tracks.sort(key=lambda tr: (tr["start"], tr["label"], tr["first_box"]))
    for number, track in enumerate(tracks):
        track["id"] = number
    return {"rules": {"sample_interval_s": round(interval, 6), "gap_s": settings.track_gap_s,
                      "tracker": "bytetrack, one per label"}, "tracks": tracks}


def track_of(tracks: dict) -> dict[tuple[float, int], int]:
    """(sample time, detection index) -> track id."""
    return {(t, j): track["id"] for track in tracks["tracks"] for t, j in track["samples"]}
