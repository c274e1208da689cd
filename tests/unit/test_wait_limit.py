"""How long local mode follows a job: derived from the media's length, not a fixed hour."""

from __future__ import annotations

from reelscope.local.cloud import WAIT_FLOOR_S, wait_limit
from reelscope.settings import Settings


def test_a_four_hour_video_is_followed_for_longer_than_it_takes():
    four_hours = wait_limit({"media": {"duration_s": 4 * 3600.0}})
    assert four_hours > 4 * 3600 * 0.305 * 2  # twice the 0.305x real time measured on an hour
    assert wait_limit({"media": {"duration_s": 16.0}}) < 3600 < four_hours
    assert wait_limit({"status": "QUEUED"}) == wait_limit({"media": {"duration_s": Settings().max_duration_s}})
    assert wait_limit(None) > WAIT_FLOOR_S
