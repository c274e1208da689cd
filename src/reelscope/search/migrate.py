"""`reelscope reindex`: the engine's tables rebuilt from the artifacts in the bucket, so an archive
indexed before them (or a table lost) is searchable again; then the jobs table's items of the
index before the engine (term postings, documents, vector pointers, counts, clocks) are deleted.
A job made before cases is put in the default case on the way.

A job's documents come from its report.json; their vectors from its search/vectors.json where
that holds the same document with the same text (nothing embedded twice), else they are embedded."""

from __future__ import annotations

import tempfile
from pathlib import Path

from reelscope.access.roles import case_of
from reelscope.artifacts import dumps
from reelscope.search import embed, engine
from reelscope.search import index as search
from reelscope.status import FINISHED
from reelscope.store import Store, artifact_key

LEGACY_PREFIXES = ("TERM#", "DOC#", "VECTORS", "SEARCH", "CLOCK")
JOBS_PAGE = 100


def reindex(store: Store, say=print) -> dict:
    """Every finished job with a report into the engine; returns the counts."""
    import numpy as np

    counts = {"jobs": 0, "documents": 0, "embedded": 0, "reused": 0, "legacy_items_deleted": 0, "cases_given": 0}
    start = None
    while True:
        jobs, start = store.list_jobs(JOBS_PAGE, start=start)
        for job in jobs:
            if "case_id" not in job:  # a job from before cases: the default case, and so in the ByCase index
                store.update_job(job["job_id"], case_id=case_of(job))
                counts["cases_given"] += 1
            if job["status"] not in FINISHED or not job.get("manifest_key"):
                continue
            report = store.get_json(artifact_key(job["job_id"], "report.json"))
            docs = search.documents(report, job["created_at"], case_of(job))
            known = _stored_vectors(store, job["job_id"])
            missing = [doc for doc in docs if _key(doc) not in known]
            fresh = dict(zip(map(_key, missing), embed.embed([doc["text"] for doc in missing]))) if missing else {}
            vectors = np.array([known.get(_key(doc), fresh.get(_key(doc))) for doc in docs], dtype=np.float32)
            vectors = vectors.reshape(len(docs), embed.DIMENSIONS)
            with tempfile.TemporaryDirectory(prefix="reelscope-reindex-") as tmp:  # the artifact, in today's form
                path = Path(tmp) / search.VECTORS_PATH
                path.parent.mkdir(parents=True)
                path.write_text(dumps(search.vectors_document(docs, vectors)), encoding="utf-8")
                store.upload(path, artifact_key(job["job_id"], search.VECTORS_PATH))
            clock = search.clock_row(report, job["created_at"], case_of(job))
            engine.replace_job(job["job_id"], search.rows(docs, vectors), clock)
            counts["jobs"] += 1
            counts["documents"] += len(docs)
            counts["embedded"] += len(missing)
            counts["reused"] += len(docs) - len(missing)
            say(f"reindexed {job['job_id']} ({job.get('source_file_name', '')}): {len(docs)} documents")
        if start is None:
            break
    counts["legacy_items_deleted"] = _delete_legacy_items(store)
    engine.maintain()
    return counts


def _key(doc: dict) -> tuple[str, str]:
    return doc["doc_id"], doc.get("text", doc.get("snippet", ""))[:search.SNIPPET_CHARS]


def _stored_vectors(store: Store, job_id: str) -> dict:
    """(doc_id, text's start) -> vector, from the job's search/vectors.json (of either form); {} without one."""
    key = artifact_key(job_id, search.VECTORS_PATH)
    try:
        docs, vectors = search.stored_vectors(store.get_json(key), key)
    except store.s3.exceptions.NoSuchKey:
        return {}
    return {_key(doc): vector for doc, vector in zip(docs, vectors)}


def _delete_legacy_items(store: Store) -> int:
    keys = []
    for page in store.table.client.get_paginator("scan").paginate(TableName=store.table.name, ProjectionExpression="PK, SK"):
        keys += [{"PK": item["PK"]["S"], "SK": item["SK"]["S"]} for item in page["Items"]
                 if item["PK"]["S"].startswith(LEGACY_PREFIXES)]
    store.table.write_batch(deletes=keys)
    return len(keys)
