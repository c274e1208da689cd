"""Benchmark the local API under load: requests per second and latency at 1, 8 and 32 clients.

    .venv/bin/python bench/bench_api.py [--requests 400] [--jobs 100]

A local mode (moto on 127.0.0.1, the API handler behind its HTTP server) is filled with a
100-job store: job items, step items, manifests and search terms as the Index step writes them
(built directly, no video is processed: the read paths cost the same). Then each route is
loaded by N client threads, each on its own keep-alive-less connection per request as a browser
tab without HTTP/1.1 reuse would, bounded by a total request count and a time limit, loopback only:

  static              GET /openapi.json of an unknown route's 404: no store access; the floor
  GET /jobs           one Query on the ByCreated index
  GET /jobs/{id}      the job item, its steps, its manifest and presigned links
  GET /search         a keyword query of three terms
Then every row again as a signed-in viewer of the jobs' case (a local user added, a session
cookie on each request): what the door costs (the authorizer's session and user lookups; the
list read from the ByCase index; search filtered by case in the engine).
Every row is measured in this run. Print: route, caller, clients, req/s, p50 and p99 in ms, errors.
"""

from __future__ import annotations

import argparse
import http.client
import json
import platform
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from reelscope.access import sessions
from reelscope.access.users import Users
from reelscope.local import cloud as local
from reelscope.local import servers
from reelscope.store import artifact_key, now

WORDS = "harbor crane cargo ship morning wind boats report schedule pier north south river bridge".split()


def fill(cloud: local.LocalCloud, jobs: int) -> list[str]:
    """Jobs as the pipeline leaves them: item, six step records, a manifest, 20 indexed segments each."""
    from reelscope.search import index as search

    ids = []
    for n in range(jobs):
        job_id = f"{n:032x}"
        ids.append(job_id)
        source = {"bucket": local.BUCKET, "key": f"uploads/video-{n}.mp4", "size": 1000, "version": "v"}
        cloud.store.create_job(job_id, source, job_id, "default")
        cloud.store.update_job(job_id, status="SUCCEEDED", source_file_name=f"video-{n}.mp4", media={"duration_s": 60.0},
                               manifest_key=artifact_key(job_id, "manifest.json"), finished_at=now())
        for step in ("probe", "downscale", "transcribe", "subtitles", "detect", "entities"):
            cloud.store.start_step(job_id, step, 1)
            cloud.store.end_step(job_id, step, 1.0, outputs=[])
        artifacts = [{"path": p, "kind": k, "sha256": "0" * 64, "size_bytes": 1}
                     for p, k in (("720p.mp4", "rendition"), ("report.json", "report"), ("subtitles.vtt", "subtitles"))]
        cloud.store.put_json(artifact_key(job_id, "manifest.json"), json.dumps({"artifacts": artifacts}))
        report = {"source": {"file_name": f"video-{n}.mp4", "job_id": job_id}, "entities": [],
                  "transcript": [{"id": i, "start": i * 3.0, "end": i * 3.0 + 2.5,
                                  "text": " ".join(WORDS[(n + i + k) % len(WORDS)] for k in range(6))}
                                 for i in range(20)]}
        with tempfile.TemporaryDirectory() as tmp:
            search.index_documents(job_id, report, Path(tmp), now(), "default")
    return ids


def load(url: str, clients: int, requests: int, limit_s: float, headers: dict | None = None) -> dict:
    """`requests` GETs of url spread over `clients` threads (or fewer, when limit_s runs out first)."""
    parts = urlsplit(url)
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + limit_s
    remaining = [requests]

    def client() -> None:
        while time.monotonic() < deadline:
            with lock:
                if remaining[0] <= 0:
                    return
                remaining[0] -= 1
            started = time.perf_counter()
            connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
            try:
                connection.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""), headers=headers or {})
                response = connection.getresponse()
                response.read()
                ok = response.status < 500
            except OSError:
                ok = False
            finally:
                connection.close()
            with lock:
                latencies.append(time.perf_counter() - started)
                errors[0] += not ok

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {"requests": len(ordered), "rps": len(ordered) / elapsed, "p50": statistics.median(ordered) * 1000,
            "p99": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, "errors": errors[0]}


def sign_in(cloud: local.LocalCloud, api_url: str) -> str:
    """A viewer of the default case (the filled jobs' case), signed in: the session token."""
    Users(cloud.state_dir).add("val", "viewer", ["default"], "bench password 1")
    request = urllib.request.Request(f"{api_url}/auth/login", method="POST", headers={"Content-Type": "application/json"},
                                     data=json.dumps({"user": "val", "password": "bench password 1"}).encode())
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())["token"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="requests per row (default 400)")
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--limit-s", type=float, default=60.0, help="time limit per row")
    parser.add_argument("--clients", default="1,8,32")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as state, local.LocalCloud(Path(state)) as cloud:
        ids = fill(cloud, args.jobs)
        with servers.ApiServer(cloud.runner) as api:
            routes = {"static (404 route)": f"{api.url}/no-such-route", "GET /jobs": f"{api.url}/jobs",
                      "GET /jobs/{id}": f"{api.url}/jobs/{ids[len(ids) // 2]}",
                      "GET /search (3 terms)": f"{api.url}/search?q=harbor+crane+cargo"}
            load(routes["GET /jobs"], 1, 5, 10)  # warm the handler
            print(f"local API, {args.jobs} jobs, {args.requests} requests a row; {platform.processor() or platform.machine()}, "
                  f"Python {platform.python_version()}")
            print("| route | caller | clients | req/s | p50 ms | p99 ms | errors |\n|---|---|---:|---:|---:|---:|---:|")
            for caller, headers in (("owner, no users", None), ("viewer, signed in", "sign in")):
                if headers:
                    headers = {"Cookie": f"{sessions.COOKIE}={sign_in(cloud, api.url)}"}
                for name, url in routes.items():
                    for clients in (int(c) for c in args.clients.split(",")):
                        row = load(url, clients, args.requests, args.limit_s, headers)
                        print(f"| {name} | {caller} | {clients} | {row['rps']:.1f} | {row['p50']:.1f} | "
                              f"{row['p99']:.1f} | {row['errors']} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
