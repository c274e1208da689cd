"""Shot boundary rules (shots.py docstring) on hand-built frame signals, times derived from frame numbers."""

from __future__ import annotations

import pytest

from reelscope.analysis import frames, shots
from reelscope.analysis.shots import boundaries, find_shots, frame_signal
from reelscope.settings import Settings

FPS = 25


def signal(luma: list[float], change: list[float], settled: list[float] | None = None) -> dict:
    return {"fps": FPS, "size": [64, 36], "luma": luma, "change": change,
            "settled": settled if settled is not None else change}


def steady(count: int, luma: float = 100.0, change: float = 1.0) -> tuple[list[float], list[float]]:
    return [luma] * count, [change] * count


def test_a_spike_of_change_is_a_cut_at_that_frame():
    luma, change = steady(200)
    change[80] = 60.0
    assert boundaries(signal(luma, change), Settings()) == [(80, "cut")]
    shots = find_shots(signal(luma, change), 8.0, Settings())
    assert [(s["start"], s["end"], s["starts_with"]) for s in shots] == [(0.0, 3.2, "start"), (3.2, 8.0, "cut")]
    # keyframes: the 1 fps samples nearest the middles (1.6 s, 5.6 s) that lie inside the shots
    assert [s["keyframe"]["t"] for s in shots] == [2.0, 6.0]
    assert [s["keyframe"]["path"] for s in shots] == ["shots/0000.jpg", "shots/0001.jpg"]


def test_a_shot_between_two_samples_takes_its_middle_frame_as_keyframe():
    luma, change = steady(200)
    change[80] = change[95] = 60.0  # a shot from 3.2 s to 3.8 s: no 1 fps sample inside it
    shots = find_shots(signal(luma, change), 8.0, Settings())
    assert [(s["start"], s["end"]) for s in shots] == [(0.0, 3.2), (3.2, 3.8), (3.8, 8.0)]
    assert [s["keyframe"]["t"] for s in shots] == [2.0, 3.48, 6.0]  # 3.5 s is between frames 87 and 88
    # a sample on the frame after a shot's last is not inside it: [3.2, 4.0) takes its middle
    change[95], change[100] = 1.0, 60.0
    assert [s["keyframe"]["t"] for s in find_shots(signal(luma, change), 8.0, Settings())] == [2.0, 3.6, 6.0]
    # a sample on a shot's first frame is: [4.0, 4.6) takes 4.0
    change[80], change[115] = 1.0, 60.0
    assert [s["keyframe"]["t"] for s in find_shots(signal(luma, change), 8.0, Settings())] == [2.0, 4.0, 6.0]


def test_a_flash_that_comes_back_is_not_a_cut():
    luma, change = steady(200)
    settled = list(change)
    change[80], change[81] = 60.0, 60.0  # frame 80 differs from both neighbours; 79 and 82 alike
    assert boundaries(signal(luma, change, settled), Settings()) == []


def test_motion_raises_the_bar_a_cut_must_clear():
    luma, change = steady(200, change=12.0)  # a pan: every frame differs from the last
    change[100] = 30.0  # a jolt, not 3x the motion around it
    assert boundaries(signal(luma, change), Settings()) == []
    change[100] = 40.0
    assert boundaries(signal(luma, change), Settings()) == [(100, "cut")]


def test_a_fade_through_black_puts_a_boundary_in_the_middle_of_the_dark():
    luma = [100.0] * 100 + [100.0 - 10 * i for i in range(1, 10)] + [2.0] * 6 + [10.0 * i for i in range(1, 10)] + [100.0] * 76
    change = [1.0] + [abs(b - a) for a, b in zip(luma, luma[1:])]
    # black from frame 109 to 114, darker than shot_dark_luma from 107 to 116: the middle is frame 112
    assert boundaries(signal(luma, change), Settings()) == [(112, "fade")]


def test_black_at_the_ends_or_behind_a_cut_is_no_fade():
    opening = [2.0] * 20 + [100.0] * 100 + [2.0] * 20  # fades in from black, out to black: the video's ends
    change = [1.0] + [abs(b - a) for a, b in zip(opening, opening[1:])]
    assert boundaries(signal(opening, change), Settings()) == [(20, "cut"), (120, "cut")]
    # a hard cut into black and one out of it: the black is a shot of its own, not a fade
    assert [kind for _, kind in boundaries(signal(opening * 2, change * 2), Settings())] == ["cut"] * 4


def test_a_boundary_too_close_to_the_one_before_is_dropped():
    luma, change = steady(200)
    change[50], change[55] = 60.0, 60.0  # 0.2 s apart: under shot_min_s
    assert boundaries(signal(luma, change), Settings()) == [(50, "cut")]
    assert boundaries(signal(luma, change), Settings(shot_min_s=0.1)) == [(50, "cut"), (55, "cut")]


def test_one_shot_when_nothing_changes():
    luma, change = steady(100)
    assert [(s["start"], s["end"]) for s in find_shots(signal(luma, change), 4.0, Settings())] == [(0.0, 4.0)]


@pytest.mark.parametrize("chunk", [1, 2, 3, 4096])
def test_the_frame_signal_is_the_same_whatever_the_chunk(tmp_path, monkeypatch, chunk):
    """Flat gray frames of known levels: luma is the level, change the step from the frame before,
    settled the step from the frame before to the one two after (the last frame stands for later ones)."""
    levels = [10, 10, 50, 50, 50, 200, 0, 0, 30, 31]
    raw = tmp_path / "frames.gray"
    raw.write_bytes(b"".join(bytes([level]) * (frames.SIGNAL_SIZE[0] * frames.SIGNAL_SIZE[1]) for level in levels))
    monkeypatch.setattr(shots, "_CHUNK", chunk)
    found = frame_signal(raw, FPS)
    last = len(levels) - 1
    assert found["luma"] == [float(level) for level in levels]
    assert found["change"] == [float(abs(levels[i] - levels[max(i - 1, 0)])) for i in range(len(levels))]
    assert found["settled"] == [float(abs(levels[min(i + 2, last)] - levels[max(i - 1, 0)])) for i in range(len(levels))]
    assert found["change"][5:7] == [150.0, 200.0] and found["settled"][4] == 50.0  # 0 two after 50: by hand
