"""Benchmark search on the engine (reelscope.search, LanceDB) as the archive grows.

    .venv/bin/python bench/bench_search.py [--sizes 10000,100000,1000000] [--s3 100000] [--earlier CHECKOUT]

For each size: N documents in jobs of 1,000 written to a table in a temporary folder (and, with
--s3, on moto's S3 server), the maintenance run (full-text and scalar indexes; the ANN index from
engine.ANN_MIN_ROWS rows), then a query process of its own (a new Python) runs GET /search's
search() for each mode: keyword, semantic, hybrid, and filtered (keyword and semantic with a job
and a kind, hybrid with a label). "cold" is that process's first query of the mode (tables
opened, indexes read; importing LanceDB is apart), "warm" the p50 and p95 of 40 more. Peak RSS
is the query process's (VmHWM).
Recall@10: the semantic top 10 (no floor) against an exact scan in numpy over the same vectors.
Also: indexing one more job of 1,000 documents into the full table (what the Index step does).

Documents are synthetic so that a million can be made: texts of 12 words drawn by a Zipf law from
a 20,000-word vocabulary, vectors near one of N / 200 topic centres (cosine about 0.7 to it),
normalised: clustered as sentence embeddings are, which is what an ANN index is built for (random
uniform vectors would be a worst case no real archive has). Query vectors are given, not
embedded: embedding a query costs about 8 ms more (all-MiniLM-L6-v2 in numpy, measured below the
table as "query floor").

--earlier CHECKOUT: the search of that checkout (a git worktree), its bench_search.py, same
machine and run, for the sizes it measures (semantic only: it had no other engine).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
JOB_DOCUMENTS = 1000
VOCABULARY = 20_000
DOCUMENTS_PER_TOPIC = 200
QUERIES = 40
KINDS = ("transcript", "transcript", "transcript", "entity", "text")
LABELS = ("person", "car", "dog", "truck", "bicycle")


def words(rng: np.random.Generator) -> np.ndarray:
    syllables = [a + b for a in "bdfgklmnprstvz" for b in ("a", "e", "i", "o", "u", "ar", "en", "is", "on")]
    return np.array(["".join(rng.choice(syllables, 3)) + str(i % 7) for i in range(VOCABULARY)])


def corpus(size: int, seed: int = 0):
    """(rows in jobs of JOB_DOCUMENTS, the vectors, the topic centres, the vocabulary)."""
    rng = np.random.default_rng(seed)
    vocabulary = words(rng)
    zipf = 1 / np.arange(1, VOCABULARY + 1)
    zipf /= zipf.sum()
    topics = max(size // DOCUMENTS_PER_TOPIC, 1)
    centres = rng.standard_normal((topics, 384)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    topic = rng.integers(0, topics, size)
    vectors = centres[topic] + 0.05 * rng.standard_normal((size, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    drawn = rng.choice(VOCABULARY, (size, 12), p=zipf)
    return drawn, topic, vectors, centres, vocabulary


def batches(size: int, drawn, vectors, vocabulary, offset_jobs: int = 0):
    """pyarrow tables of 100 jobs each."""
    import pyarrow as pa

    from reelscope.search import engine

    schema = engine.document_schema()
    step = 100 * JOB_DOCUMENTS
    for first in range(0, size, step):
        last = min(first + step, size)
        n = np.arange(first, last)
        jobs = [f"{offset_jobs + i // JOB_DOCUMENTS:032x}" for i in n]
        kinds = [KINDS[i % len(KINDS)] for i in n]
        columns = {
            "uid": [f"{j}#d-{i}" for j, i in zip(jobs, n)], "job_id": jobs, "doc_id": [f"d-{i}" for i in n], "kind": kinds,
            "text": [" ".join(vocabulary[drawn[i]]) for i in n],
            "label": [LABELS[i % len(LABELS)] if k == "entity" else None for i, k in zip(n, kinds)],
            "speaker": ["S1" if k == "transcript" else None for k in kinds],
            "speaker_name": ["S1" if k == "transcript" else None for k in kinds],
            "language": ["en" if k == "transcript" else None for k in kinds], "source_language": [None] * len(n),
            "start": (n % JOB_DOCUMENTS * 3.0).tolist(), "end": (n % JOB_DOCUMENTS * 3.0 + 3).tolist(),
            "wall_start": [None] * len(n), "wall_end": [None] * len(n),
            "uploaded_at": [f"2026-{1 + (i // JOB_DOCUMENTS) % 12:02d}-01T00:00:00.000+00:00" for i in n],
            "file_name": [f"video {j[-6:]}.mp4" for j in jobs], "confidence": [0.9] * len(n), "evidence": [None] * len(n),
            "thumbnail": [None] * len(n), "min_similarity": [0.3] * len(n),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors[first:last].ravel()), 384),
        }
        yield pa.table(columns, schema=schema)


def fill(uri: str, size: int, drawn, vectors, vocabulary) -> dict:
    from reelscope.search import engine

    started = time.perf_counter()
    db = engine.connect(uri)
    table = db.create_table(engine.DOCUMENTS, schema=engine.document_schema())
    for batch in batches(size, drawn, vectors, vocabulary):
        table.add(batch)
    added = time.perf_counter() - started
    started = time.perf_counter()
    engine.maintain(uri)
    maintained = time.perf_counter() - started
    return {"add_s": added, "maintain_s": maintained}


def one_more_job(uri: str, rng_seed: int, size: int) -> float:
    """Seconds to index a job of JOB_DOCUMENTS documents into the full table (engine.replace_job)."""
    from reelscope.search import engine

    drawn, _, vectors, _, vocabulary = corpus(JOB_DOCUMENTS, seed=rng_seed)
    (batch,) = list(batches(JOB_DOCUMENTS, drawn, vectors, vocabulary, offset_jobs=size // JOB_DOCUMENTS + 1))
    rows = batch.to_pylist()
    started = time.perf_counter()
    engine.replace_job(rows[0]["job_id"], rows, None, uri)
    return time.perf_counter() - started


def disk_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def query_process(uri: str, queries: dict) -> dict:
    """Runs in a new process: each mode's cold query, then warm p50/p95, the ANN's top 10, peak RSS."""
    started = time.perf_counter()
    from reelscope.search import embed, engine
    from reelscope.search import index as search

    engine.connect(uri)  # imports lancedb and pyarrow: apart from the queries' times
    imported = time.perf_counter() - started
    vectors = {text: np.array(vector, dtype=np.float32) for text, vector in queries["vectors"].items()}
    embed.embed = lambda texts: np.stack([vectors[texts[0]]])  # query vectors given (see the module doc)
    job, label = queries["job"], queries["label"]
    in_job = search.Filters(job=job, kind=("transcript",))
    cases = {
        "keyword": lambda q: search.search(q["words"], "keyword", uri=uri),
        "semantic": lambda q: search.search(q["text"], "semantic", uri=uri),
        "hybrid": lambda q: search.search(q["words"] + " " + q["text"], "hybrid", uri=uri),
        "keyword, job + kind": lambda q: search.search(q["words"], "keyword", in_job, uri=uri),
        "semantic, job + kind": lambda q: search.search(q["text"], "semantic", in_job, uri=uri),
        "hybrid, label": lambda q: search.search(q["words"] + " " + q["text"], "hybrid", search.Filters(label=label), uri=uri),
    }
    for q in queries["items"]:  # hybrid embeds the words and the text as one query
        vectors[q["words"] + " " + q["text"]] = vectors[q["text"]]
    timings = {}
    for name, run in cases.items():
        started = time.perf_counter()
        run(queries["items"][0])
        cold = time.perf_counter() - started
        warm = []
        for q in queries["items"][1:]:
            started = time.perf_counter()
            run(q)
            warm.append(time.perf_counter() - started)
        warm.sort()
        timings[name] = {"cold_ms": cold * 1000, "p50_ms": statistics.median(warm) * 1000,
                         "p95_ms": warm[int(0.95 * (len(warm) - 1))] * 1000}
    table = engine.open_table(engine.DOCUMENTS, uri)
    top = []
    for q in queries["items"]:
        found = table.search(vectors[q["text"]], vector_column_name="vector").distance_type("cosine")
        if engine.has_ann(table):
            found = found.nprobes(engine.ANN_NPROBES).refine_factor(engine.ANN_REFINE)
        top.append([row["uid"] for row in found.select(["uid"]).limit(10).to_list()])
    return {"timings": timings, "top": top, "import_s": imported, "peak_rss_mib": peak_rss_mib()}


def peak_rss_mib() -> float:
    """This process's peak RSS (VmHWM: getrusage's ru_maxrss keeps the parent's across exec)."""
    (line,) = [line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmHWM:")]
    return int(line.split()[1]) / 1024


def measure(uri: str, size: int, drawn, topic, vectors, centres, vocabulary, env: dict | None = None) -> dict:
    rng = np.random.default_rng(size)
    items, query_vectors = [], {}
    for n in range(QUERIES + 1):
        centre = centres[rng.integers(0, len(centres))]
        vector = centre + 0.05 * rng.standard_normal(384).astype(np.float32)
        vector /= np.linalg.norm(vector)
        text = f"query {n}"
        query_vectors[text] = vector.tolist()
        items.append({"text": text, "words": " ".join(vocabulary[rng.integers(0, 200, 2)])})  # common words
    queries = {"items": items, "vectors": query_vectors, "job": f"{0:032x}", "label": "car"}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump({"uri": uri, "queries": queries}, handle)
    done = subprocess.run([sys.executable, __file__, "--query-process", handle.name], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, check=False)
    os.unlink(handle.name)
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    uids = np.array([f"{i // JOB_DOCUMENTS:032x}#d-{i}" for i in range(size)])
    recalls = []
    for item, found in zip(items, answer["top"]):
        exact = uids[np.argsort(-(vectors @ np.array(query_vectors[item["text"]], dtype=np.float32)))[:10]]
        recalls.append(len(set(exact) & set(found)) / 10)
    answer["recall_at_10"] = statistics.mean(recalls)
    return answer


def earlier_rows(checkout: str, sizes: list[int]) -> str:
    """The earlier code's own bench, in a git worktree, for the sizes it can measure."""
    with tempfile.TemporaryDirectory(prefix="reelscope-earlier-") as tmp:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", tmp, checkout], check=True,
                       capture_output=True)
        try:
            env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}  # its own in-process moto
            done = subprocess.run([sys.executable, "bench/bench_search.py", "--sizes", ",".join(map(str, sizes))],
                                  cwd=tmp, capture_output=True, text=True, env={**env, "PYTHONPATH": f"{tmp}/src"})
            return done.stdout if done.returncode == 0 else done.stderr[-2000:]
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", tmp], check=False)


def moto_s3(port: int):
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(port=port)
    server.start()
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
           "AWS_DEFAULT_REGION": "us-east-1"}
    os.environ.update(env)
    boto3.client("s3").create_bucket(Bucket="bench")
    return server, env


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--s3", default="100000", help="sizes also measured on moto's S3 server ('' for none)")
    parser.add_argument("--earlier", help="a checkout whose search to measure beside (its own bench_search.py)")
    parser.add_argument("--query-process", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.query_process:
        given = json.loads(Path(args.query_process).read_text())
        print(json.dumps(query_process(given["uri"], given["queries"])))
        return
    from reelscope.search import embed

    embed.embed(["warm"])
    started = time.perf_counter()
    for _ in range(20):
        embed.embed(["vessels carrying freight reached port at dawn"])
    floor_ms = (time.perf_counter() - started) / 20 * 1000
    sizes = [int(s) for s in args.sizes.split(",")]
    on_s3 = {int(s) for s in args.s3.split(",") if s}
    print(f"Machine: {os.cpu_count()} cores ({platform.machine()}), Python {platform.python_version()}; "
          f"query floor (embedding a query, all-MiniLM-L6-v2 in numpy): {floor_ms:.1f} ms\n")
    rows = []
    server = None
    for size in sorted(set(sizes) | on_s3):
        data = corpus(size)
        drawn, topic, vectors, centres, vocabulary = data
        places = (["folder"] if size in sizes else []) + (["moto S3"] if size in on_s3 else [])
        for place in places:
            with tempfile.TemporaryDirectory(prefix="reelscope-bench-search-") as tmp:
                env = None
                if place == "folder":
                    uri = str(Path(tmp) / "search")
                else:
                    if server is None:
                        server, s3_env = moto_s3(45_999)
                    env, uri = s3_env, f"s3://bench/search-{size}"
                filled = fill(uri, size, drawn, vectors, vocabulary)
                more = one_more_job(uri, 7, size)
                answer = measure(uri, size, *data, env=env)
                disk = disk_bytes(Path(tmp)) / 1024**2 if place == "folder" else None
                rows.append((size, place, filled, more, disk, answer))
                print(f"{size:,} {place}: {json.dumps({k: v for k, v in answer.items() if k != 'top'})}", file=sys.stderr)
    if server is not None:
        server.stop()
    print("| documents | where | fill s | maintain s (indexes) | one more job s | disk MiB | mode | cold ms | p50 ms | p95 ms |"
          " recall@10 | query RSS MiB |")
    print("|---:|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|")
    for size, place, filled, more, disk, answer in rows:
        for n, (mode, t) in enumerate(answer["timings"].items()):
            head = (f"| {size:,} | {place} | {filled['add_s']:.1f} | {filled['maintain_s']:.1f} | {more:.2f} | "
                    f"{disk:.0f} |" if disk is not None else
                    f"| {size:,} | {place} | {filled['add_s']:.1f} | {filled['maintain_s']:.1f} | {more:.2f} | |") if n == 0 \
                else "| | | | | | |"
            tail = f" {answer['recall_at_10']:.3f} | {answer['peak_rss_mib']:.0f} |" if n == 0 else " | |"
            print(f"{head} {mode} | {t['cold_ms']:.0f} | {t['p50_ms']:.1f} | {t['p95_ms']:.1f} |{tail}")
    if args.earlier:
        print(f"\nThe earlier code ({args.earlier}), its own bench_search.py:\n")
        print(earlier_rows(args.earlier, [s for s in sizes if s <= 300_000]))


if __name__ == "__main__":
    main()
