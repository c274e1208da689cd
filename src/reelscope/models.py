"""Models shared by every job of a process: each loads once, and serves one job at a time.

A service process (`reelscope serve`, a warm Batch container) runs several jobs at once in
threads. The engines keep state per call on the model object: openai-whisper installs forward
hooks for word timestamps and the kv-cache on the model while it decodes, and ultralytics keeps
its predictor (source, batch, results) on the YOLO object. Two threads on one object interleave
those and corrupt each other's results, so every use holds the model's own lock. On 2 cores one
model at a time loses nothing: each call already keeps both cores busy (torch's intra-op
threads), and bench/bench_concurrency.py measures it. Loading happens under the same lock, so two
jobs that start together load a model once. openai-whisper goes further: its word alignment
switches a class attribute (MultiHeadAttention.use_sdpa) off and on around each call, so two
transcriptions must not overlap even on two different models: they share one lock.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Hashable, Iterator
from typing import Any


class _Slot:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.model: Any = None


_slots: dict[Hashable, _Slot] = {}
_slots_lock = threading.Lock()


def _slot(key: Hashable) -> _Slot:
    with _slots_lock:
        return _slots.setdefault(key, _Slot())


@contextlib.contextmanager
def exclusive(key: Hashable, load: Callable[[], Any], lock_key: Hashable | None = None) -> Iterator[Any]:
    """The model for `key` (loaded by `load()` on first use), held by this thread alone inside the block.
    `lock_key`: the lock is shared with every model that names it (a library whose calls change
    process-wide state, so that two of its models must not run at once either). A load that
    raises is not kept: the next use tries again (the cause may have been fixed)."""
    slot = _slot(key)
    with _slot(lock_key if lock_key is not None else key).lock:
        if slot.model is None:
            slot.model = load()
        yield slot.model


def loaded(key: Hashable, load: Callable[[], Any]) -> Any:
    """The model for `key`, loaded once; for models whose calls keep no state (the embedder)."""
    with exclusive(key, load) as model:
        return model


def inference_threads(asked: int) -> int:
    """Threads for one model's CPU inference: `asked`, or by default half the cores, at least one.
    Measured on 2 cores (docs/BENCHMARKS.md): Whisper (CTranslate2 int8) on one thread transcribed
    15 minutes in 43 s with 43 CPU s, on two in 54 s with 67 CPU s, the same words; RapidOCR on one
    thread spent 35% less CPU for 9% more time alone. And a job's branches run side by side."""
    return asked or max(1, (os.cpu_count() or 1) // 2)
