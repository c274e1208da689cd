"""Keyword search across every video: an inverted index in the jobs table.

Documents are a job's transcript segments and entity ranges (an entity's text is its label, so
"dog" finds dog ranges). Text is normalized (lower case, accents folded, punctuation dropped,
a small English stop list, plural "s" trimmed) the same way for documents and queries.

Items: PK = TERM#{term}, SK = {job_id}#{doc_id}, with the document's kind, times, snippet and
the term's frequency; PK = SEARCH, SK = STATS counts documents for the idf. A query ranks
documents by sum over its terms of idf(term) * tf / (tf + 1) (BM25 without length norm).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from decimal import Decimal

from boto3.dynamodb.conditions import Key

from .store import Store

STOP_WORDS = frozenset("a an and are as at be but by for from has have in is it its of on or that the this to was "
                       "were will with".split())
SNIPPET_CHARS = 200


def terms(text: str) -> list[str]:
    folded = unicodedata.normalize("NFKD", text.lower()).encode("ascii", "ignore").decode()
    words = re.findall(r"[a-z0-9]+", folded)
    return [w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w
            for w in words if w not in STOP_WORDS]


def documents(report: dict) -> list[dict]:
    """The searchable pieces of one job's report."""
    docs = [{"doc_id": f"seg-{s['id']}", "kind": "transcript", "text": s["text"], "start": s["start"], "end": s["end"]}
            for s in report["transcript"]]
    docs += [{"doc_id": f"ent-{e['id']}", "kind": "entity", "text": e["label"] + (" animal" if e["animal"] else ""),
              "label": e["label"], "start": e["start"], "end": e["end"], "confidence": e["peak_confidence"],
              "evidence": e["evidence"]["path"]} for e in report["entities"]]
    return docs


def index_job(store: Store, job_id: str, report: dict) -> int:
    """Write the job's term items; returns how many documents were indexed."""
    docs = documents(report)
    with store.table.batch_writer(overwrite_by_pkeys=["PK", "SK"]) as batch:
        for doc in docs:
            counts = Counter(terms(doc["text"]))
            for term, count in counts.items():
                item = {"PK": f"TERM#{term}", "SK": f"{job_id}#{doc['doc_id']}", "job_id": job_id, "tf": count,
                        "file_name": report["source"]["file_name"],
                        **{k: v for k, v in doc.items() if k != "text"}, "snippet": doc["text"][:SNIPPET_CHARS]}
                batch.put_item(Item={k: Decimal(str(v)) if isinstance(v, float) else v for k, v in item.items()})
    store.table.update_item(Key={"PK": "SEARCH", "SK": "STATS"}, UpdateExpression="ADD documents :n",
                            ExpressionAttributeValues={":n": len(docs)})
    return len(docs)


def keyword_search(store: Store, query: str, job: str | None = None, label: str | None = None,
                   limit: int = 20) -> list[dict]:
    """Hits across all videos, best first. Raises ValueError when the query has no searchable word."""
    query_terms = sorted(set(terms(query)))
    if not query_terms:
        raise ValueError("no searchable words (only stop words or punctuation)")
    stats = store.table.get_item(Key={"PK": "SEARCH", "SK": "STATS"}).get("Item", {})
    total = max(int(stats.get("documents", 0)), 1)
    scored: dict[str, dict] = {}
    for term in query_terms:
        condition = Key("PK").eq(f"TERM#{term}")
        if job:
            condition = condition & Key("SK").begins_with(f"{job}#")
        items, kwargs = [], {"KeyConditionExpression": condition}
        while True:
            page = store.table.query(**kwargs)
            items += page["Items"]
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        idf = math.log(1 + (total - len(items) + 0.5) / (len(items) + 0.5))
        for item in items:
            if label and item.get("label") != label:
                continue
            hit = scored.setdefault(item["SK"], {"score": 0.0, "matched": [], **_plain(item)})
            hit["score"] += idf * int(item["tf"]) / (int(item["tf"]) + 1)
            hit["matched"].append(term)
    hits = sorted(scored.values(), key=lambda h: (-h["score"], h["job_id"], h["start"]))[:limit]
    for hit in hits:
        hit["score"] = round(hit["score"], 4)
        hit["link"] = f"/jobs/{hit['job_id']}/report#t={hit['start']:.2f}"
    return hits


def _plain(item: dict) -> dict:
    hidden = {"PK", "SK", "tf"}
    return {k: (float(v) if isinstance(v, Decimal) else v) for k, v in item.items() if k not in hidden}
