"""Wall-clock time from an overlay's readings (wallclock.py): forms, misreads, restarts, refusals."""

from __future__ import annotations

import datetime as dt

import pytest

from reelscope.analysis import wallclock
from reelscope.settings import Settings

EPOCH = 1700000000  # 2023-11-14 22:13:20


def clock_text(seconds: float, form: str = "%Y-%m-%d %H:%M:%S") -> str:
    return (dt.datetime(1970, 1, 1) + dt.timedelta(seconds=int(seconds))).strftime(form)


def overlay(readings: list[tuple[float, str]]) -> tuple[dict, list[dict]]:
    entity = {"start": readings[0][0], "box": [10, 10, 300, 40], "first_reading": readings[0][1]}
    return entity, [{"t": t, "text": text} for t, text in readings]


@pytest.mark.parametrize(("text", "date", "seconds"), [
    ("2025-07-02 17:05:44", ("YMD", 2025, 7, 2), 61544),
    ("02/07/2025 17:05:44", ("XXY", 2025, 2, 7), 61544),
    ("07-02-2025 05:05:44 PM", ("XXY", 2025, 7, 2), 61544),
    ("CAM 3  17:05:44", None, 61544),
    ("2O25-07-02 17:O5:44", ("YMD", 2025, 7, 2), 61544),  # O read for 0
    ("2025-07-0217:05:44", ("YMD", 2025, 7, 2), 61544),  # the space lost
])
def test_forms_of_a_burned_in_clock_parse(text, date, seconds):
    parsed = wallclock.parse(text)
    assert (parsed["date"], parsed["seconds"]) == (date, seconds)


@pytest.mark.parametrize("text", ["GATE 47", "25:10:00", "13:05:44 PM", "frame 001234"])
def test_what_is_no_time_does_not_parse(text):
    assert wallclock.parse(text) is None


def test_day_and_month_are_settled_over_all_readings():
    settings = Settings()
    find = [wallclock.parse(t) for t in ("02/07/2025 17:05:44", "13/07/2025 17:05:44")]
    assert wallclock.date_order(find, "auto") == "DMY"
    us = [wallclock.parse("07-02-2025 05:05:44 PM")]
    assert wallclock.date_order(us, "auto") == "MDY"
    assert wallclock.date_order([wallclock.parse("02/07/2025 17:05:44")], settings.clock_date_order) == "DMY"
    assert wallclock.date_order([wallclock.parse("02/07/2025 17:05:44")], "MDY") == "MDY"


def test_a_running_clock_with_misreads_gives_its_start():
    readings = [(float(t), clock_text(EPOCH + t)) for t in range(3, 60)]
    readings[10] = (readings[10][0], clock_text(EPOCH + 13 + 3600))  # an hour digit misread
    readings[20] = (readings[20][0], "2023-11-14 22:1")  # cut
    clock, note = wallclock.find([overlay(readings)], 60.0, Settings())
    assert clock["start"] == "2023-11-14T22:13:20"
    assert clock["pieces"] == [{"video_start": 0.0, "video_end": 60.0, "wall_start": "2023-11-14T22:13:20"}]
    assert clock["source"]["fitted"] == 55 and "55 of 56" in note  # the cut reading does not parse
    assert wallclock.wall_time(clock, 30.5) == "2023-11-14T22:13:50"


def test_a_clock_that_jumps_is_two_pieces():
    readings = [(float(t), clock_text(EPOCH + t)) for t in range(0, 30)]
    readings += [(float(t), clock_text(EPOCH + 7200 + t)) for t in range(30, 60)]  # the recorder restarted
    clock, _ = wallclock.find([overlay(readings)], 60.0, Settings())
    assert clock["pieces"] == [
        {"video_start": 0.0, "video_end": 30.0, "wall_start": "2023-11-14T22:13:20"},
        {"video_start": 30.0, "video_end": 60.0, "wall_start": "2023-11-15T00:13:50"}]
    assert wallclock.wall_time(clock, 45.0) == "2023-11-15T00:14:05"


def test_a_misread_minute_for_a_while_is_not_a_piece():
    readings = [(float(t), clock_text(EPOCH + t)) for t in range(0, 90)]
    for t in range(40, 48):  # the tens of minutes read as a 4 for eight readings
        readings[t] = (float(t), clock_text(EPOCH + t + 1800))
    clock, _ = wallclock.find([overlay(readings)], 90.0, Settings())
    assert len(clock["pieces"]) == 1


def test_a_time_alone_passes_midnight():
    start = 23 * 3600 + 59 * 60 + 50
    readings = [(float(t), clock_text(start + t, "%H:%M:%S")) for t in range(0, 30)]
    clock, _ = wallclock.find([overlay(readings)], 30.0, Settings())
    assert clock["start"] == "23:59:50" and len(clock["pieces"]) == 1
    assert wallclock.wall_time(clock, 15) == "00:00:05"
    assert clock["source"]["date_order"] is None


def test_a_clock_read_inconsistently_gives_no_wall_clock_and_says_why():
    import random

    rng = random.Random(7)
    readings = [(float(t), clock_text(EPOCH + rng.randrange(0, 10**6))) for t in range(0, 60)]
    clock, note = wallclock.find([overlay(readings)], 60.0, Settings())
    assert clock is None and "fit one running clock" in note
    counter = [(float(t), f"FRAME {t * 25:06d}") for t in range(0, 60)]
    assert wallclock.find([overlay(counter)], 60.0, Settings()) == (None, "no overlay reads as a date or time")
    assert wallclock.find([], 60.0, Settings())[0] is None


def test_a_wall_clock_query_lands_on_its_second_in_each_piece():
    readings = [(float(t), clock_text(EPOCH + t)) for t in range(0, 600)]
    clock, _ = wallclock.find([overlay(readings)], 600.0, Settings())
    assert wallclock.moments(clock, wallclock.parse_query("2023-11-14 22:20:00")) == [400.0]
    assert wallclock.moments(clock, wallclock.parse_query("22:20")) == [400.0]
    assert wallclock.moments(clock, wallclock.parse_query("22:13")) == [0.0]  # the minute began before the video
    assert wallclock.moments(clock, wallclock.parse_query("2023-11-15 22:20")) == []
    assert wallclock.moments(clock, wallclock.parse_query("23:20")) == []
    assert wallclock.parse_query("dog") is None and wallclock.parse_query("25:00") is None


def test_a_timecode_is_no_clock_and_a_dated_clock_wins_over_a_time_alone():
    timecode = overlay([(float(t), clock_text(t, "%H:%M:%S") + ".000") for t in range(30)])
    assert "timecode" in wallclock.find([timecode], 30.0, Settings())[1]
    time_alone = overlay([(float(t), clock_text(EPOCH + 99 + t, "%H:%M:%S")) for t in range(30)])
    dated = overlay([(float(t), clock_text(EPOCH + t)) for t in range(10)])
    clock, _ = wallclock.find([time_alone, dated, timecode], 30.0, Settings())
    assert clock["start"] == "2023-11-14T22:13:20"
