"""Wall-clock time from a burned-in clock: the mapping from video time to the time the recorder's
clock showed (CCTV, bodycam, dashcam), fitted over many readings of an overlay (ocr.py).

The rules (settings in brackets):
  1. A reading is a date and time or a time alone: 2025-07-02 17:05:44, 02/07/2025 17:05:44,
     07-02-2025 05:05:44 PM, 17:05:44, 17:05 (a letter O read for a zero and I, l or | for a one
     are taken as digits beside digits). DD/MM or MM/DD is settled over all readings: a first
     number over 12 means DMY, a second one MDY; otherwise [clock_date_order] (auto: MDY when
     the clock shows AM/PM, else DMY).
  2. Each reading gives an offset, wall - video time. The clock runs at real speed, so the
     offsets of one recording agree; a misread digit gives a stray one, a recorder restart a new
     value from then on. Offsets are grouped (each group spans at most 1.5 clock ticks);
     groups of fewer than [clock_min_readings] readings are misreads and dropped.
  3. In time order, readings of one group form a run; a run shorter than [clock_min_readings]
     and a run between two runs of the same group (a clock does not come back to the offset it
     had: what it showed between was misread) join their neighbours. Each remaining run is a
     piece: from its first reading (the first from the video's start) to the next piece (the
     last to the video's end), its offset the median of its readings.
  4. No wall clock unless at least half the readings that parse as a time fit the pieces:
     a clock OCR cannot read consistently gives none, and the reason is said. A time alone that
     runs with the video from 00:00:00 is a timecode, not a clock. Of several clocks, one with a
     date wins, then the one more readings fit.
Times are the clock's own: naive ISO 8601 (no zone), "YYYY-MM-DDTHH:MM:SS", or "HH:MM:SS" for a
clock without a date.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
import statistics

from reelscope.settings import Settings

_TIME = r"(?P<h>\d{1,2})[:.](?P<m>\d{2})(?:[:.](?P<s>\d{2}))?(?:\s*(?P<half>[AP])\.?M\b\.?)?"
_YMD = r"(?P<y1>\d{4})[-/.](?P<a1>\d{1,2})[-/.](?P<b1>\d{1,2})"
_XXY = r"(?P<a2>\d{1,2})[-/.](?P<b2>\d{1,2})[-/.](?P<y2>\d{4})"
# Between the date and the time: a space or a T, or what OCR reads for a space over a busy picture
# (none, a stray "." ":" "," or "-": "2023-11-14:22:13:27", "2023-11-1422:13:33").
_READING = re.compile(rf"(?:(?:{_YMD}|{_XXY})[\s.:,T-]?\s*)?{_TIME}", re.IGNORECASE)
_QUERY = re.compile(r"^\s*(?:(\d{4})-(\d{1,2})-(\d{1,2})[ T]+)?(\d{1,2}):(\d{2})(?::(\d{2}))?\s*$")
_DAY = 86400
TOLERANCE_TICKS = 1.5  # rule 2


def _digits(text: str) -> str:
    """O read for 0 and I, l, | read for 1, where they stand beside a digit or a separator."""
    near = r"(?<=[\d:./-])|(?=[\d:./-])"
    text = re.sub(rf"(?:{near})[Oo]|[Oo](?=[\d:./-])", "0", text)
    return re.sub(rf"(?:{near})[Il|]|[Il|](?=[\d:./-])", "1", text)


def parse(text: str) -> dict | None:
    """Rule 1, before the date order is known: {date: (form, year, first, second) or None,
    seconds: of the day, half: AM/PM shown, tick: 1 or 60 (no seconds shown)}."""
    found = _READING.search(_digits(text))
    if not found:
        return None
    hour, minute, second = int(found["h"]), int(found["m"]), int(found["s"] or 0)
    if found["half"]:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if found["half"].upper() == "P" else 0)
    if hour > 23 or minute > 59 or second > 59:
        return None
    date = None
    if found["y1"]:
        date = ("YMD", int(found["y1"]), int(found["a1"]), int(found["b1"]))
    elif found["y2"]:
        date = ("XXY", int(found["y2"]), int(found["a2"]), int(found["b2"]))
    return {"date": date, "seconds": hour * 3600 + minute * 60 + second, "half": bool(found["half"]),
            "tick": 1 if found["s"] else 60}


def date_order(parsed: list[dict], setting: str) -> str:
    """Rule 1: DMY or MDY for the dates written day and month first."""
    written = [p["date"] for p in parsed if p["date"] and p["date"][0] == "XXY"]
    if any(first > 12 for _, _, first, _ in written):
        return "DMY"
    if any(second > 12 for _, _, _, second in written):
        return "MDY"
    if setting != "auto":
        return setting
    return "MDY" if any(p["half"] for p in parsed) else "DMY"


def _wall_seconds(reading: dict, order: str) -> float | None:
    """Seconds since 1970-01-01 of the clock's own time (a date), or of the day (a time alone)."""
    if reading["date"] is None:
        return float(reading["seconds"])
    form, year, first, second = reading["date"]
    month, day = (first, second) if form == "YMD" or order == "MDY" else (second, first)
    try:
        midnight = dt.datetime(year, month, day)
    except ValueError:
        return None
    return float(calendar.timegm(midnight.timetuple()) + reading["seconds"])


def fit(points: list[tuple[float, float]], tick: float, min_readings: int) -> list[tuple[float, float]]:
    """Rules 2-3: (video t, wall seconds) in time order -> pieces as (first t, offset); [] when
    nothing holds."""
    tolerance = TOLERANCE_TICKS * tick
    offsets = sorted(w - t for t, w in points)
    groups: list[list[float]] = []
    for offset in offsets:
        if groups and offset - groups[-1][0] <= tolerance:
            groups[-1].append(offset)
        else:
            groups.append([offset])
    kept = [(g[0], g[-1]) for g in groups if len(g) >= min_readings]

    def group_of(offset: float) -> int | None:
        return next((i for i, (low, high) in enumerate(kept) if low <= offset <= high), None)

    runs: list[list] = []  # [group, [(t, offset), ...]]
    for t, w in points:
        group = group_of(w - t)
        if group is None:
            continue
        if runs and runs[-1][0] == group:
            runs[-1][1].append((t, w - t))
        else:
            runs.append([group, [(t, w - t)]])
    while True:  # fold short runs, and returns to an earlier offset, into their neighbours
        i = next((i for i, (group, members) in enumerate(runs) if len(members) < min_readings
                  or 0 < i < len(runs) - 1 and runs[i - 1][0] == runs[i + 1][0] != group), None)
        if i is None:
            break
        del runs[i]
        if 0 < i < len(runs) and runs[i - 1][0] == runs[i][0]:
            runs[i - 1][1] += runs.pop(i)[1]
    return [(members[0][0], statistics.median(o for _, o in members)) for _, members in runs]


def find(overlays: list[tuple[dict, list[dict]]], duration: float, settings: Settings) -> tuple[dict | None, str]:
    """The wall clock of the overlay that fits best ((overlay entity, its readings) each), or None
    and why not."""
    if not overlays:
        return None, "no overlay (text whose digits change in place) was seen"
    best: tuple | None = None
    why = "no overlay reads as a date or time"
    for overlay, readings in overlays:
        parsed = [(r["t"], p) for r in readings if (p := parse(r["text"]))]
        if not parsed:
            continue
        order = date_order([p for _, p in parsed], settings.clock_date_order)
        has_date = sum(p["date"] is not None for _, p in parsed) * 2 > len(parsed)
        tick = 60 if sum(p["tick"] == 60 for _, p in parsed) * 2 > len(parsed) else 1
        points = [(t, w) for t, p in parsed if (p["date"] is not None) == has_date
                  and (w := _wall_seconds(p, order)) is not None]
        if not has_date:  # a time alone passes midnight: unwrap
            unwrapped, days, previous = [], 0, None
            for t, w in points:
                if previous is not None and w + days * _DAY - previous < -_DAY / 2:
                    days += 1
                previous = w + days * _DAY
                unwrapped.append((t, previous))
            points = unwrapped
        pieces = fit(points, tick, settings.clock_min_readings)
        fitted = sum(1 for t, w in points if any(abs(w - t - offset) <= TOLERANCE_TICKS * tick for _, offset in pieces))
        if not pieces or fitted * 2 < len(parsed):
            why = (f"the overlay at {overlay['start']:.0f} s reads as a time in {len(parsed)} of {len(readings)} "
                   f"readings, but only {fitted} fit one running clock (at least {settings.clock_min_readings} "
                   f"and half are needed)")
            continue
        if not has_date and len(pieces) == 1 and abs(pieces[0][1]) < 2 * tick:
            why = f"the overlay at {overlay['start']:.0f} s counts the video's own time (a timecode, not a clock)"
            continue
        written_day_first = any(p["date"] and p["date"][0] == "XXY" for _, p in parsed)
        if best is None or (has_date, fitted) > best[:2]:
            best = (has_date, fitted, overlay, pieces, order if written_day_first else None, len(parsed))
    if best is None:
        return None, why
    has_date, fitted, overlay, pieces, order, parsed_count = best
    starts = [0.0] + [t for t, _ in pieces[1:]]
    ends = starts[1:] + [duration]
    clock = {"pieces": [{"video_start": round(start, 3), "video_end": round(end, 3),
                         "wall_start": _iso(start + offset, has_date)}
                        for start, end, (_, offset) in zip(starts, ends, pieces)],
             "source": {"box": overlay["box"], "first_reading": overlay["first_reading"],
                        "readings": parsed_count, "fitted": fitted, "date_order": order}}
    clock["start"] = clock["pieces"][0]["wall_start"]
    return clock, f"{fitted} of {parsed_count} readings fit {len(pieces)} piece{'s' * (len(pieces) > 1)}"


def _iso(seconds: float, has_date: bool) -> str:
    moment = dt.datetime(1970, 1, 1) + dt.timedelta(seconds=round(seconds))
    return moment.isoformat() if has_date else moment.time().isoformat()


def _seconds(iso: str) -> tuple[float, bool]:
    """(seconds since 1970, or of the day; has a date) of an ISO time written by _iso."""
    if "T" in iso:
        return float(calendar.timegm(dt.datetime.fromisoformat(iso).timetuple())), True
    moment = dt.time.fromisoformat(iso)
    return float(moment.hour * 3600 + moment.minute * 60 + moment.second), False


def wall_time(clock: dict | None, t: float) -> str:
    """What the clock showed (or would have shown) at video time t; "" without a clock."""
    if not clock:
        return ""
    piece = next((p for p in clock["pieces"] if t < p["video_end"]), clock["pieces"][-1])
    start, has_date = _seconds(piece["wall_start"])
    return _iso(start + t - piece["video_start"], has_date)


def parse_query(query: str) -> dict | None:
    """A search for a wall-clock time: "17:20", "17:20:05", "2025-07-02 17:20[:05]" -> {date,
    seconds (of the day), span (60 without seconds)}; None for any other query."""
    found = _QUERY.match(query)
    if not found:
        return None
    year, month, day, hour, minute, second = found.groups()
    if int(hour) > 23 or int(minute) > 59 or int(second or 0) > 59:
        return None
    date = None
    if year:
        try:
            date = dt.date(int(year), int(month), int(day))
        except ValueError:
            return None
    return {"date": date, "seconds": int(hour) * 3600 + int(minute) * 60 + int(second or 0),
            "span": 1 if second else 60}


def moments(clock: dict | None, query: dict) -> list[float]:
    """The video times at which the clock showed the queried time (the first second of it), one
    per piece and day it falls in."""
    if not clock:
        return []
    found = []
    for piece in clock["pieces"]:
        start, has_date = _seconds(piece["wall_start"])
        end = start + piece["video_end"] - piece["video_start"]
        if query["date"] is not None:
            if not has_date:
                continue
            targets = [calendar.timegm(query["date"].timetuple()) + query["seconds"]]
        else:  # a time of day: every day the piece covers
            first_day = int(start // _DAY)
            targets = [day * _DAY + query["seconds"] for day in range(first_day, int(end // _DAY) + 1)]
        for target in targets:
            low = max(target, start)
            if low < min(target + query["span"], end) or (low == start and target <= start < target + query["span"]):
                found.append(round(piece["video_start"] + low - start, 3))
    return sorted(set(found))
