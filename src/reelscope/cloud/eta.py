"""How long a running job has left: each step's expected seconds from its rate (seconds per second
of media) on this deployment, the branches side by side, the index after them.

The rates are learned: Index folds each finished job's measured steps into a running average
(`learn`), kept in one small item, so the estimate follows whatever runs the steps (2 CPU cores
locally, a GPU on Batch). Until a step has been measured here, its rate is DEFAULT_RATES,
measured by bench/bench_long.py on 2 cores (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import datetime as dt

from reelscope.analysis import pipeline
from reelscope.status import Status

# Seconds per second of media on 2 cores, no GPU, the branches side by side (bench_long.py, 15
# minutes of 720p; speakers: bench_speakers.py; docs/BENCHMARKS.md).
DEFAULT_RATES = {"probe": 0.0005, "downscale": 0.157, "transcribe": 0.159, "speakers": 0.005, "translate": 0.0,
                 "subtitles": 0.0002, "detect": 0.119, "shots": 0.0045, "tracks": 0.001, "entities": 0.002, "ocr": 0.207}
START_S = 3.0  # what every step pays whatever the length (a Lambda's or a Batch job's start, loading)
INDEX_RATE = 0.003  # the index step: exports and search documents
LEARN_WEIGHT = 0.3  # a new measurement's share of the average
LEARN_MIN_MEDIA_S = 30.0  # shorter media measure start-up, not rate


def rates(learned: dict | None) -> dict[str, float]:
    return {**DEFAULT_RATES, **{k: float(v) for k, v in (learned or {}).items() if k in DEFAULT_RATES}}


def learn(learned: dict | None, records: dict[str, dict], media_s: float) -> dict[str, float]:
    """The average rates with this job's steps folded in (those that ran and succeeded, not reused)."""
    known = {k: float(v) for k, v in (learned or {}).items()}
    if media_s < LEARN_MIN_MEDIA_S:
        return known
    for name, record in records.items():
        if record.get("status") == Status.SUCCEEDED and not record.get("reused") and name in DEFAULT_RATES:
            measured = max(float(record.get("duration_s", 0)) - START_S, 0.0) / media_s
            known[name] = round(measured if name not in known
                                else (1 - LEARN_WEIGHT) * known[name] + LEARN_WEIGHT * measured, 6)
    return known


def _elapsed_s(started_at: str, now: dt.datetime) -> float:
    started = dt.datetime.fromisoformat(started_at.replace("Z", "+00:00"))
    return max((now - started).total_seconds(), 0.0)


def remaining_s(media_s: float, records: dict[str, dict], learned: dict | None, now: dt.datetime | None = None) -> float:
    """Seconds until the job ends, about: per branch, the steps not ended (a running one less what it
    has run, but at least a tenth of its expectation), the slowest branch, then the index."""
    now = now or dt.datetime.now(dt.UTC)
    per_second = rates(learned)

    def expected(name: str) -> float:
        return START_S + per_second[name] * media_s

    def left(name: str) -> float:
        record = records.get(name, {})
        if record.get("status") in (Status.SUCCEEDED, Status.FAILED, Status.SKIPPED):
            return 0.0
        if record.get("status") == Status.RUNNING:
            return max(expected(name) - _elapsed_s(record["started_at"], now), expected(name) / 10)
        return expected(name)

    branches = [sum(left(name) for name in branch) for branch in pipeline.BRANCHES.values()]
    return left("probe") + max(branches) + START_S + INDEX_RATE * media_s


def progress(job: dict, records: dict[str, dict], learned: dict | None) -> dict | None:
    """What GET /jobs/{id} says of a queued or running job: steps ended of all, and the estimate
    (None once the job has finished, or while its media's length is not known)."""
    media_s = (job.get("media") or {}).get("duration_s")
    if job["status"] not in (Status.QUEUED, Status.RUNNING) or not media_s:
        return None
    ended = sum(1 for r in records.values() if r.get("status") in (Status.SUCCEEDED, Status.FAILED, Status.SKIPPED))
    return {"steps_ended": ended, "steps": len(pipeline.STEP_ORDER),
            "eta_s": round(remaining_s(float(media_s), records, learned)),
            "rates": "measured here" if learned else "defaults (2 cores)"}


def say_left(seconds: float) -> str:
    return f"about {seconds / 60:.0f} min left" if seconds >= 90 else f"about {seconds:.0f} s left"
