"""The search engine's tables: LanceDB, embedded, on a folder (local mode: the state folder's
search/) or on S3 (the deployment: s3://BUCKET/search), the same code for both.

Why LanceDB: it runs in the process (no server to keep up, pause or pay by the hour), does BM25
full text, vector search (exact, then ANN once an index is built), scalar filters pushed into both
and versioned tables, and stores them on S3 with commits by conditional PUT, so several writers
are safe. Two tables:
- `documents`: a row per searchable document (search/index.py builds them), key `uid` =
  "{job_id}#{doc_id}". A job's rows are replaced in one commit (merge_insert), so a rerun leaves no
  duplicate and a reader never sees a job half indexed.
- `clocks`: a row per video with a burned-in clock (its pieces), for wall-clock queries.

Rows added after an index was built are still found (LanceDB searches what no index covers
exactly); `maintain()` folds them in, builds the ANN index once a table is large enough, compacts
and drops old versions."""

from __future__ import annotations

import os
import threading
from datetime import timedelta
from typing import TYPE_CHECKING

from reelscope.search import embed

if TYPE_CHECKING:
    import pyarrow as pa

DOCUMENTS = "documents"
CLOCKS = "clocks"
ANN_MIN_ROWS = 100_000  # below it an exact scan is fast enough (docs/BENCHMARKS.md, Search)
# IVF-PQ: built in 85-105 s for a million rows on 2 cores (an HNSW graph took 72 s for 100,000),
# a partition per 4,096 rows, 48 sub-vectors of 8 dimensions. Measured on a million clustered
# vectors (bench_search.py's), recall@10 against an exact scan: the product quantizer's order is
# the limit (all 244 partitions probed, 10x re-ranked: 0.937); 100 probed and 30x the asked rows
# re-ranked on the full vectors: 0.983 in 30 ms (50x: the same, 39 ms).
ANN_ROWS_PER_PARTITION = 4_096
ANN_SUB_VECTORS = 48
ANN_NPROBES = 100
ANN_REFINE = 30
ANN_ROUGH_NPROBES = 20  # the facets' read: counts, not a ranking
KEEP_VERSIONS_FOR = timedelta(hours=1)  # a search's `next` cursor reads the version it began on
# A bitmap for the columns of few values, a B-tree for the others.
BITMAP_COLUMNS = ("job_id", "case_id", "kind", "label", "language", "speaker")
BTREE_COLUMNS = ("file_name", "uploaded_at", "wall_start", "wall_end")


def document_schema() -> pa.Schema:
    import pyarrow as pa

    text = pa.string()
    return pa.schema([
        ("uid", text), ("job_id", text), ("case_id", text), ("doc_id", text), ("kind", text), ("text", text),
        ("label", text), ("speaker", text), ("speaker_name", text), ("language", text), ("source_language", text),
        ("start", pa.float64()), ("end", pa.float64()), ("wall_start", text), ("wall_end", text),
        ("uploaded_at", text), ("file_name", text), ("confidence", pa.float64()), ("evidence", text),
        ("thumbnail", text), ("min_similarity", pa.float32()),
        ("vector", pa.list_(pa.float32(), embed.DIMENSIONS)),
    ])


def clock_schema() -> pa.Schema:
    import pyarrow as pa

    text = pa.string()
    return pa.schema([("job_id", text), ("case_id", text), ("file_name", text), ("uploaded_at", text), ("pieces", text),
                      ("wall_start", text), ("wall_end", text)])


def search_uri(environ=os.environ) -> str:
    """REELSCOPE_SEARCH_URI (local mode sets its state folder's search/), else the media bucket's search/."""
    return environ.get("REELSCOPE_SEARCH_URI") or f"s3://{environ['REELSCOPE_BUCKET']}/search"


def storage_options(uri: str, environ=os.environ) -> dict[str, str]:
    """S3 settings the engine's own client (not boto3) needs: an endpoint other than AWS's (local
    mode, tests on moto's server) and plain HTTP to it. Credentials and region come from the
    environment, as boto3's do."""
    endpoint = environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL")
    if not uri.startswith("s3://") or not endpoint:
        return {}
    return {"aws_endpoint": endpoint, "allow_http": str(endpoint.startswith("http://")).lower(),
            "aws_region": environ.get("AWS_DEFAULT_REGION") or environ.get("AWS_REGION") or "us-east-1"}


_connections: dict[tuple, object] = {}
_connecting = threading.Lock()


def connect(uri: str | None = None):
    """The process's connection to the tables at `uri` (search_uri() by default)."""
    import lancedb

    uri = uri or search_uri()
    options = storage_options(uri)
    key = (uri, tuple(sorted(options.items())))
    with _connecting:
        if key not in _connections:
            _connections[key] = lancedb.connect(uri, storage_options=options or None)
        return _connections[key]


def open_table(name: str, uri: str | None = None, version: int | None = None):
    """The table as it is now (or at `version`), or None before anything was indexed. Opened per
    call: a handle keeps the version it was opened at."""
    db = connect(uri)
    try:
        table = db.open_table(name)
    except (ValueError, FileNotFoundError):  # LanceDB: "Table 'documents' was not found"
        return None
    if version is not None:
        table.checkout(version)
    return table


def _table(name: str, schema: pa.Schema, uri: str | None):
    db = connect(uri)
    try:
        table = db.create_table(name, schema=schema, exist_ok=True)
    except (ValueError, OSError):  # created at the same moment by another writer
        table = db.open_table(name)
    return upgraded(table)


def upgraded(table):
    """A table made before jobs had cases gets the column, every row in the default case (what
    reelscope.access.roles calls a job without one)."""
    if table is not None and "case_id" not in table.schema.names:
        try:
            table.add_columns({"case_id": "'default'"})
        except (ValueError, RuntimeError, OSError):  # added at the same moment by another writer
            table.checkout_latest()
    return table


def replace_job(job_id: str, rows: list[dict], clock: dict | None, uri: str | None = None) -> None:
    """The job's documents become `rows` (and its clock row `clock`) in one commit per table."""
    _replace(_table(DOCUMENTS, document_schema(), uri), "uid", job_id, rows, document_schema())
    _replace(_table(CLOCKS, clock_schema(), uri), "job_id", job_id, [clock] if clock else [], clock_schema())
    ensure_text_index(uri)


def _replace(table, key: str, job_id: str, rows: list[dict], schema: pa.Schema) -> None:
    import pyarrow as pa

    data = pa.Table.from_pylist(rows, schema=schema)
    (table.merge_insert(key).when_matched_update_all().when_not_matched_insert_all()
     .when_not_matched_by_source_delete(f"job_id = {quoted(job_id)}").execute(data))


def remove_job(job_id: str, uri: str | None = None) -> None:
    for name in (DOCUMENTS, CLOCKS):
        table = open_table(name, uri)
        if table is not None:
            table.delete(f"job_id = {quoted(job_id)}")


def ensure_text_index(uri: str | None = None) -> None:
    """The full-text index must exist before a keyword query; rows added later are searched too."""
    from lancedb.index import FTS

    table = open_table(DOCUMENTS, uri)
    if table is None or "text" in searchable_by(table):
        return
    try:
        table.create_index("text", config=FTS(stem=True, remove_stop_words=True, ascii_folding=True), replace=False)
    except (ValueError, RuntimeError, OSError):  # built at the same moment by another writer
        if "text" not in searchable_by(open_table(DOCUMENTS, uri)):
            raise


def maintain(uri: str | None = None) -> dict:
    """What a scheduled task runs: compaction, new rows into the indexes, the ANN index once the
    table is large enough, the scalar indexes of the filters, versions older than
    KEEP_VERSIONS_FOR dropped. Returns what it found and did."""
    from lancedb.index import Bitmap, BTree, IvfPq

    done = {}
    for name in (DOCUMENTS, CLOCKS):
        table = upgraded(open_table(name, uri))
        if table is None:
            continue
        rows = table.count_rows()
        if name == DOCUMENTS:
            ensure_text_index(uri)
            indexed = {column for index in table.list_indices() for column in index.columns}
            for columns, config in ((BITMAP_COLUMNS, Bitmap), (BTREE_COLUMNS, BTree)):
                for column in sorted(set(columns) - indexed):
                    table.create_index(column, config=config())
            if rows >= ANN_MIN_ROWS and "vector" not in indexed:
                table.create_index("vector", config=IvfPq(distance_type="cosine", num_sub_vectors=ANN_SUB_VECTORS,
                                                          num_partitions=max(rows // ANN_ROWS_PER_PARTITION, 1)))
        table.optimize(cleanup_older_than=KEEP_VERSIONS_FOR)
        done[name] = {"rows": rows, "indexes": sorted(index.name for index in table.list_indices()),
                      "version": table.version}
    return done


def searchable_by(table) -> set[str]:
    """Which of the two search indexes the table has: "text" (full text), "vector" (the ANN)."""
    indexes = table.list_indices()
    return ({"text"} if any(index.index_type == "FTS" for index in indexes) else set()) | (
        {"vector"} if any(index.columns == ["vector"] for index in indexes) else set())


def has_ann(table) -> bool:
    return "vector" in searchable_by(table)


def quoted(value: str) -> str:
    """A string literal of the engine's SQL filters."""
    return "'" + value.replace("'", "''") + "'"
