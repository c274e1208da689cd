"""The time a running job has left, from rates per second of media: the arithmetic on chosen rates."""

from __future__ import annotations

import datetime as dt

import pytest

from reelscope.cloud import eta

NOW = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
ONLY_TRANSCRIBE = {name: 0.0 for name in eta.DEFAULT_RATES} | {"transcribe": 1.0}  # 1 s per second of media


def started(seconds_ago: float) -> dict:
    return {"status": "RUNNING", "started_at": (NOW - dt.timedelta(seconds=seconds_ago)).isoformat()}


def test_the_slowest_branch_and_the_index_after_it():
    # 100 s of media: probe 3; speech 3 + 100 (transcribe) + 3 (speakers) + 3 (translate) + 3 (subtitles); index 3 + 0.3
    assert eta.remaining_s(100, {}, ONLY_TRANSCRIBE, NOW) == pytest.approx(3 + 112 + 3.3)
    probed = {"probe": {"status": "SUCCEEDED"}}
    assert eta.remaining_s(100, probed | {"transcribe": started(40)}, ONLY_TRANSCRIBE, NOW) == pytest.approx(72 + 3.3)
    # A step past its expectation is taken as a tenth of it from its end, not as done: speech 10.3 + 9,
    # still more than the vision branch's four steps of 3 s.
    assert eta.remaining_s(100, probed | {"transcribe": started(500)}, ONLY_TRANSCRIBE, NOW) == pytest.approx(19.3 + 3.3)
    ended = probed | {n: {"status": s} for n, s in [("transcribe", "SUCCEEDED"), ("subtitles", "SKIPPED")]}
    assert eta.remaining_s(100, ended, ONLY_TRANSCRIBE, NOW) == pytest.approx(12 + 3.3)


def test_rates_are_learned_from_steps_that_ran_on_long_enough_media():
    records = {"transcribe": {"status": "SUCCEEDED", "duration_s": 63.0}, "detect": {"status": "FAILED", "duration_s": 9.0},
               "downscale": {"status": "SUCCEEDED", "duration_s": 500.0, "reused": True}}
    first = eta.learn(None, records, 600.0)
    assert first == {"transcribe": 0.1}  # (63 - 3) / 600; the failed and the reused steps say nothing
    second = eta.learn(first, {"transcribe": {"status": "SUCCEEDED", "duration_s": 123.0}}, 600.0)
    assert second == {"transcribe": pytest.approx(0.7 * 0.1 + 0.3 * 0.2)}
    assert eta.learn(first, {"transcribe": {"status": "SUCCEEDED", "duration_s": 20.0}}, 10.0) == first
    assert eta.rates(second)["detect"] == eta.DEFAULT_RATES["detect"]


def test_progress_only_while_the_job_runs_and_its_length_is_known():
    running = {"status": "RUNNING", "media": {"duration_s": 100.0}}
    shown = eta.progress(running, {"probe": {"status": "SUCCEEDED"}}, ONLY_TRANSCRIBE)
    assert shown["steps_ended"] == 1 and shown["steps"] == 11 and shown["rates"] == "measured here" and shown["eta_s"] > 100
    assert eta.progress({"status": "QUEUED"}, {}, None) is None
    assert eta.progress({**running, "status": "SUCCEEDED"}, {}, None) is None
    assert eta.say_left(30) == "about 30 s left" and eta.say_left(600) == "about 10 min left"
