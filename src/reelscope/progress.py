"""What the terminal shows while a job runs: a line as each step starts and ends, and within the
long steps how far they are (transcribe: the audio decoded; detect: the frames seen), every 25%.

Stages call `within(step, done_s, total_s)`; it goes to the Progress objects listening, if any (the CLI's
`analyze` and `process` on a terminal). Nobody listens in Lambda, in Batch or in `serve`."""

from __future__ import annotations

import sys
import threading
from contextlib import contextmanager

QUARTERS = 4

_listeners: list[Progress] = []
_lock = threading.Lock()


class Progress:
    """Stage-by-stage lines on stderr when it is a terminal; silent otherwise."""

    def __init__(self, enabled: bool | None = None):
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._shown: dict[str, int] = {}

    def say(self, text: str) -> None:
        if self.enabled:
            print(text, file=sys.stderr, flush=True)

    def step_part(self, step: str, fraction: float) -> None:
        """`step` is `fraction` done: a line each time it passes another quarter."""
        quarter = min(int(fraction * QUARTERS), QUARTERS)
        if quarter > self._shown.get(step, 0):
            self._shown[step] = quarter
            self.say(f"  {step} {min(fraction, 1.0):.0%}")

    @contextmanager
    def listening(self):
        """Show what the stages report while in this block."""
        with _lock:
            _listeners.append(self)
        try:
            yield self
        finally:
            with _lock:
                _listeners.remove(self)


def within(step: str, done_s: float, total_s: float) -> None:
    """A stage saying how far it is: done_s of the media's total_s seconds."""
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        listener.step_part(step, done_s / max(total_s, 0.001))
