"""Benchmark what a browser's upload costs local mode in memory: a presigned POST (the page's
upload) of 1 and 4 GiB into the S3 endpoint, sent by curl from another process.

    .venv/bin/python bench/bench_upload.py [--sizes-gib 1,4] [--baseline-gib 1]

Each row: the size, the wall time, this process's RSS before, at its peak (sampled every 20 ms)
and after, and the growth at the peak. The baseline is moto's own server (no gate in front: what
`serve` did before the gate streamed uploads), measured in the same run at --baseline-gib only
(it holds the body in memory twice: 4 GiB would take 9 GiB). The object lands outside uploads/,
so no job starts: the upload alone is measured.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from reelscope.local.cloud import BUCKET, LocalCloud

KEY = "bench/posted.bin"


def rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def post(s3, endpoint: str, file: Path) -> float:
    """Seconds to POST `file` with curl against the presigned policy `s3` signs, at `endpoint`."""
    form = s3.generate_presigned_post(Bucket=BUCKET, Key=KEY, Fields={"Content-Type": "video/mp4"},
                                      Conditions=[["content-length-range", 1, 16 << 30], ["eq", "$Content-Type", "video/mp4"]])
    fields = [arg for name, value in form["fields"].items() for arg in ("-F", f"{name}={value}")]
    started = time.perf_counter()
    code = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", *fields, "-F", f"file=@{file}",
                           f"{endpoint}/{BUCKET}"], capture_output=True, text=True, check=True).stdout
    if code not in ("200", "204"):
        raise SystemExit(f"POST answered {code}")
    return time.perf_counter() - started


def measured(send) -> tuple[float, float, float, float]:
    """(seconds, RSS before, peak, after) of send()."""
    peak, done = [rss_mib()], threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            peak.append(rss_mib())

    before = rss_mib()
    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        seconds = send()
    finally:
        done.set()
        sampler.join()
    return seconds, before, max(peak), rss_mib()


def moto_alone(cloud: LocalCloud):
    """moto's own server on a free port, sharing the gated one's backend (what serve ran before)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    return server, f"http://127.0.0.1:{server._server.server_port}"  # noqa: SLF001 - its bound port


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes-gib", default="1,4")
    parser.add_argument("--baseline-gib", type=float, default=1.0)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-upload-") as tmp, LocalCloud(Path(tmp) / "state") as cloud:
        for gib in [float(g) for g in args.sizes_gib.split(",")] + ([args.baseline_gib] if args.baseline_gib else []):
            baseline = len(rows) == len(args.sizes_gib.split(","))
            file = Path(tmp) / f"{gib:g}GiB.bin"
            with open(file, "wb") as out:  # incompressible, as video is
                for _ in range(int(gib * 1024)):
                    out.write(os.urandom(1 << 20))
            server = None
            endpoint = cloud.endpoint
            if baseline:
                server, endpoint = moto_alone(cloud)
            try:
                seconds, before, peak, after = measured(lambda: post(cloud.store.s3, endpoint, file))  # noqa: B023
            finally:
                if server:
                    server.stop()
            cloud.s3.delete_object(Bucket=BUCKET, Key=KEY)
            file.unlink()
            rows.append(("moto alone (before)" if baseline else "serve's S3 gate", gib, seconds, before, peak, after))
    print("| path | GiB | s | RSS before MiB | peak MiB | after MiB | growth at peak MiB |")
    print("|---|---|---|---|---|---|---|")
    for path, gib, seconds, before, peak, after in rows:
        print(f"| {path} | {gib:g} | {seconds:.1f} | {before:.0f} | {peak:.0f} | {after:.0f} | {peak - before:.0f} |")


if __name__ == "__main__":
    main()
