"""Search across every video: keyword (an inverted index in the jobs table), semantic (sentence
embeddings, cosine) and hybrid (both blended).

Documents are a job's transcript segments and entity ranges (an entity's text is its label, so
"dog" finds dog ranges). Both modes index the same documents and return hits of the same shape.

Keyword: text is normalized (lower case, accents folded, punctuation dropped, a small English
stop list, plural "s" trimmed) the same way for documents and queries. Items: PK = TERM#{term},
SK = {job_id}: the term's postings in that job, packed in one string (a line per document: id,
term frequency, start, label), so a query reads one small item per job a term occurs in rather
than one per document (a term said thousands of times in hours of speech continues in items
SK = {job_id}.1, .2...: none grows past POSTINGS_CHUNK_CHARS); PK = DOC#{job_id}, SK = {doc_id}:
what a hit shows of the document, read only for the hits returned; PK = SEARCH, SK = STATS
counts documents for the idf. A query ranks documents by sum over its terms of idf(term) * tf /
(tf + 1) (BM25 without length norm).

Semantic: each document's all-MiniLM-L6-v2 vector (embed.py), stored per job in S3 as
jobs/{job_id}/search/vectors.json; PK = VECTORS, SK = {job_id} lists the jobs that have one (and
where the job's terms are listed, for indexing it again: records/search-terms.json). A
query is embedded and compared with every stored vector (exact cosine: fine to a few hundred
thousand documents, see docs/BENCHMARKS.md). A warm process keeps a job's vectors until the job
is indexed again. Hybrid: 0.5 * keyword score / best keyword score + 0.5 * similarity.

Wall clock: a query that is a time or a date and time ("17:20", "2025-07-02 17:20:05") also
finds the moments whose burned-in clock showed it (PK = CLOCK, SK = {job_id}: the job's clock
pieces), first, as hits of kind "moment".
"""

from __future__ import annotations

import base64
import bisect
import math
import re
import threading
import unicodedata
from collections import Counter, OrderedDict
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from boto3.dynamodb.conditions import Key

from reelscope.analysis import reports, wallclock
from reelscope.artifacts import dumps
from reelscope.errors import BadQuery, ReelscopeError
from reelscope.search import embed
from reelscope.store import Store, artifact_key, now, to_dynamo

if TYPE_CHECKING:
    import numpy as np

STOP_WORDS = frozenset("a an and are as at be but by for from has have in is it its of on or that the this to was "
                       "were will with".split())
SNIPPET_CHARS = 200
MODES = ("keyword", "semantic", "hybrid")
VECTORS_SCHEMA = "reelscope.vectors/1"
VECTORS_PATH = "search/vectors.json"
# Below its kind's floor a semantic "match" is noise and is not returned; bench/bench_search.py
# measures both kinds on known related and unrelated queries. A transcript segment is a sentence:
# unrelated sentences reach 0.28 against the nearest one, paraphrases 0.44 and up. An entity's text
# is one or two words, and short texts crowd together: an unrelated word scores 0.43 against its
# nearest COCO label at the median and 0.67 at most ("purple" and "orange"), while "a dog",
# "canine", "puppy" or "vehicle" score 0.70-0.91 against theirs. On-screen text is either: a
# caption of three words or more takes a sentence's floor, a word or two (a sign: "emisiones")
# a label's ("car" scores 0.34 against "emisiones").
MIN_SIMILARITY = {"transcript": 0.3, "entity": 0.6}
SHORT_TEXT_WORDS = 2
KEYWORD_WEIGHT = 0.5  # hybrid: the rest is the similarity's
CACHED_JOBS = 512  # vectors of this many jobs kept in a warm process
MAX_QUERY_TERMS = 32
FIRST_LAYOUT_FIELDS = ("tf", "job_id", "start", "label")  # what ranking reads of a first-layout term item
POSTINGS_CHUNK_CHARS = 64_000  # a term's postings in one job, per item (an item holds at most 400 KB)
JOB_ID_CHARS = 32


def min_similarity(doc: dict) -> float:
    """The floor of one document as the vectors file keeps it (see MIN_SIMILARITY)."""
    if doc["kind"] == "text":
        return MIN_SIMILARITY["entity" if len(doc["snippet"].split()) <= SHORT_TEXT_WORDS else "transcript"]
    return MIN_SIMILARITY[doc["kind"]]


def terms(text: str) -> list[str]:
    folded = unicodedata.normalize("NFKD", text.lower()).encode("ascii", "ignore").decode()
    words = re.findall(r"[a-z0-9]+", folded)
    return [w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w
            for w in words if w not in STOP_WORDS]


def documents(report: dict) -> list[dict]:
    """The searchable pieces of one job's report, each with a picture of its moment: an entity
    range (an object, or on-screen text) its evidence frame, a transcript segment (and its English
    translation, for speech in another language) the last thumbnail at or before its start."""
    thumbnails = report.get("thumbnails") or []
    starts = [thumbnail["t"] for thumbnail in thumbnails]

    def thumbnail_at(t: float) -> dict:
        before = bisect.bisect_right(starts, t) - 1
        return {"thumbnail": thumbnails[max(before, 0)]["path"]} if thumbnails else {}

    names = reports.speaker_names(report)
    docs = [{"doc_id": f"seg-{s['id']}", "kind": "transcript", "text": s["text"], "start": s["start"], "end": s["end"],
             **({"speaker": s["speaker"], "speaker_name": names.get(s["speaker"], s["speaker"])} if s.get("speaker") else {}),
             **thumbnail_at(s["start"])} for s in report["transcript"]]
    docs += [{"doc_id": f"en-{s['id']}", "kind": "translation", "text": s["text"], "start": s["start"], "end": s["end"],
              "source_language": s["source_language"], **thumbnail_at(s["start"])} for s in report.get("translation", [])]
    for e in report["entities"]:
        text = e["kind"] == "text"
        docs.append({"doc_id": f"ent-{e['id']}", "kind": "text" if text else "entity",
                     "text": e["text"] if text else e["label"] + (" animal" if e["animal"] else ""),
                     **({} if text else {"label": e["label"]}), "start": e["start"], "end": e["end"],
                     "confidence": e["peak_confidence"], "evidence": e["evidence"]["path"],
                     "thumbnail": e["evidence"]["path"]})
    return docs


def _hit_fields(job_id: str, file_name: str, doc: dict) -> dict:
    """What a hit says about its document, in both modes."""
    return {"job_id": job_id, "file_name": file_name, **{k: v for k, v in doc.items() if k != "text"},
            "snippet": doc["text"][:SNIPPET_CHARS]}


def _postings(docs: list[dict]) -> dict[str, list[str]]:
    """Each term of the job's documents -> its postings in chunks of at most POSTINGS_CHUNK_CHARS:
    a line per document, "doc_id TAB tf TAB start TAB label TAB speaker TAB speaker_name" (label empty
    for transcript segments, the speaker's fields for the others)."""
    lines: dict[str, list[str]] = {}
    for doc in docs:
        for term, count in Counter(terms(doc["text"])).items():
            # a label of custom weights, an analyst's name could hold a tab
            label, speaker, name = (" ".join(doc.get(k, "").split()) for k in ("label", "speaker", "speaker_name"))
            lines.setdefault(term, []).append(f"{doc['doc_id']}\t{count}\t{doc['start']!r}\t{label}\t{speaker}\t{name}")
    chunked: dict[str, list[str]] = {}
    for term, found in lines.items():
        chunks, size = [[]], 0
        for line in found:
            if size + len(line) > POSTINGS_CHUNK_CHARS and chunks[-1]:
                chunks.append([])
                size = 0
            chunks[-1].append(line)
            size += len(line) + 1
        chunked[term] = ["\n".join(chunk) for chunk in chunks]
    return chunked


def _postings_key(job_id: str, chunk: int) -> str:
    """A term's postings item in a job: SK = the job id, then {job_id}.{n} for chunk n."""
    return job_id if chunk == 0 else f"{job_id}.{chunk}"


def terms_key(job_id: str) -> str:
    return artifact_key(job_id, "records/search-terms.json")


def _read_postings(job_id: str, packed: str) -> list[dict]:
    """The postings of one item (lines written before speakers have four fields, not six)."""
    postings = []
    for line in packed.split("\n"):
        doc_id, tf, start, label, *speaker = line.split("\t")
        postings.append({"sk": f"{job_id}#{doc_id}", "job_id": job_id, "tf": int(tf), "start": float(start),
                         **({"label": label} if label else {}),
                         **({"speaker": speaker[0], "speaker_name": speaker[1]} if speaker and speaker[0] else {})})
    return postings


def index_documents(store: Store, job_id: str, report: dict, folder: Path) -> tuple[int, str]:
    """Write the job's term and document items and its vectors (the file under `folder`, then S3
    and the VECTORS item); a job indexed before loses the terms and documents it no longer has.
    Returns how many documents were indexed and the vectors' relative path."""
    docs = documents(report)
    file_name = report["source"]["file_name"]
    postings = _postings(docs)
    shown = [_hit_fields(job_id, file_name, doc) for doc in docs]
    old_docs = {item["SK"] for item in store.table.query_all(Key("PK").eq(f"DOC#{job_id}"), fields=("SK",))}
    store.table.write_batch(
        [{"PK": f"TERM#{term}", "SK": _postings_key(job_id, n), "postings": packed}
         for term, chunks in sorted(postings.items()) for n, packed in enumerate(chunks)]
        + [to_dynamo({"PK": f"DOC#{job_id}", "SK": doc["doc_id"], **fields}) for doc, fields in zip(docs, shown)])
    path = Path(folder) / VECTORS_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(vectors_document(shown, embed.embed([doc["text"] for doc in docs]))), encoding="utf-8")
    key = artifact_key(job_id, VECTORS_PATH)
    store.upload(path, key)
    # The job's terms and their chunk counts go to S3 (thousands of words for hours of speech: no item
    # grows with a video's length); an item written before this layout lists its terms itself.
    chunks = {term: len(packed) for term, packed in postings.items()}
    previous = store.table.get_item(Key={"PK": "VECTORS", "SK": job_id}).get("Item", {})
    old_chunks = (store.get_json(previous["terms_key"]) if "terms_key" in previous
                  else dict.fromkeys(previous.get("terms", ()), 1))
    store.put_json(terms_key(job_id), dumps(chunks))
    before = store.table.put_item(Item={"PK": "VECTORS", "SK": job_id, "key": key, "documents": len(docs),
                                        "model": embed.MODEL_NAME, "indexed_at": now(), "terms": len(chunks),
                                        "terms_key": terms_key(job_id)},
                                  ReturnValues="ALL_OLD").get("Attributes", {})
    # A job indexed again (a redriven execution, a rerun) replaces its documents: what it no longer
    # has is deleted, and the count changes by the difference only.
    gone_postings = [(term, n) for term, count in sorted(old_chunks.items()) for n in range(chunks.get(term, 0), int(count))]
    gone_docs = old_docs - {doc["doc_id"] for doc in docs}
    store.table.write_batch(deletes=[{"PK": f"TERM#{term}", "SK": _postings_key(job_id, n)} for term, n in gone_postings]
                            + [{"PK": f"DOC#{job_id}", "SK": doc_id} for doc_id in sorted(gone_docs)])
    store.table.update_item(Key={"PK": "SEARCH", "SK": "STATS"}, UpdateExpression="ADD documents :n",
                            ExpressionAttributeValues={":n": len(docs) - int(before.get("documents", 0))})
    if report.get("wall_clock"):
        store.table.put_item(Item=to_dynamo({"PK": "CLOCK", "SK": job_id, "file_name": file_name,
                                             "pieces": report["wall_clock"]["pieces"]}))
    else:  # a batch delete: the index function may write in batches, and deletes nothing else alone
        store.table.write_batch(deletes=[{"PK": "CLOCK", "SK": job_id}])
    return len(docs), VECTORS_PATH


def vectors_document(hit_fields: list[dict], vectors: np.ndarray) -> dict:
    """A job's search/vectors.json: its documents as hits show them, and one vector per document."""
    return {"schema": VECTORS_SCHEMA, "model": embed.MODEL_NAME, "dimensions": embed.DIMENSIONS,
            "documents": hit_fields, "vectors": base64.b64encode(vectors.astype("<f4").tobytes()).decode()}


def search(store: Store, query: str, mode: str = "keyword", job: str | None = None, label: str | None = None,
           limit: int = 20, speaker: str | None = None) -> list[dict]:
    """Hits across all videos (or one job), best first; `label` keeps only that label's entity
    ranges, `speaker` only the transcript segments of that speaker (an id, S2, or the name given,
    in any case). Raises BadQuery, naming the problem, for a query with nothing to search for."""
    if mode not in MODES:
        raise BadQuery(f"mode must be one of {', '.join(MODES)}")
    wall = wallclock.parse_query(query)
    moments = _clock_hits(store, wall, job) if wall and not label and not speaker else []
    said_by = speaker.casefold().strip() if speaker else None
    try:
        if mode == "keyword":
            hits = _keyword_hits(store, query, job)
        elif mode == "semantic":
            hits = {sk: {**hit, "score": hit["similarity"]} for sk, hit in _semantic_hits(store, query, job).items()}
        else:
            hits = _hybrid_hits(store, query, job)
    except BadQuery:
        if not wall:
            raise
        hits = {}
    ranked = sorted((h for h in hits.values() if (not label or h.get("label") == label) and (
                        not said_by or said_by in (h.get("speaker", "").casefold(), h.get("speaker_name", "").casefold()))),
                    key=lambda h: (-h["score"], h["job_id"], h["start"]))[:max(limit - len(moments), 0)]
    _add_documents(store, ranked)
    ranked = (moments + ranked)[:limit]
    for hit in ranked:
        hit["score"] = round(hit["score"], 4)
        hit["link"] = f"/jobs/{hit['job_id']}/report#t={hit['start']:.2f}"
    return ranked


def _clock_hits(store: Store, wall: dict, job: str | None) -> list[dict]:
    """A wall-clock time's moments in each video whose burned-in clock showed it (wallclock.py),
    ranked before any other hit; the CLOCK items hold each job's pieces."""
    condition = Key("PK").eq("CLOCK") & Key("SK").eq(job) if job else Key("PK").eq("CLOCK")
    hits = []
    for item in store.table.query_all(condition):
        clock = {"pieces": [{k: (float(v) if isinstance(v, Decimal) else v) for k, v in piece.items()}
                            for piece in item["pieces"]]}
        for t in wallclock.moments(clock, wall):
            shown = wallclock.wall_time(clock, t)
            hits.append({"job_id": item["SK"], "file_name": item["file_name"], "doc_id": f"clock-{t:.3f}",
                         "kind": "moment", "start": t, "end": t + wall["span"], "wall_time": shown, "score": 1.0,
                         "snippet": f"{shown.replace('T', ' ')} on the burned-in clock"})
    return sorted(hits, key=lambda h: (h["job_id"], h["start"]))


def _keyword_hits(store: Store, query: str, job: str | None) -> dict[str, dict]:
    query_terms = sorted(set(terms(query)))
    if not query_terms:
        raise BadQuery("no searchable words (only stop words or punctuation)")
    if len(query_terms) > MAX_QUERY_TERMS:  # one Query per term: a pasted page must not cost hundreds
        raise BadQuery(f"{len(query_terms)} distinct searchable words; at most {MAX_QUERY_TERMS}")
    stats = store.table.get_item(Key={"PK": "SEARCH", "SK": "STATS"}).get("Item", {})
    total = max(int(stats.get("documents", 0)), 1)
    scored: dict[str, dict] = {}
    for term in query_terms:
        postings = _term_postings(store, term, job)
        idf = math.log(1 + (total - len(postings) + 0.5) / (len(postings) + 0.5))
        for posting in postings:
            tf = posting.pop("tf")
            hit = scored.setdefault(posting["sk"], {"score": 0.0, "matched": [], **posting})
            hit["score"] += idf * tf / (tf + 1)
            hit["matched"].append(term)
    return scored


def _term_postings(store: Store, term: str, job: str | None) -> list[dict]:
    """The term's postings, from its items of this layout and from those of the first one (an item
    per term and document, SK = {job_id}#{doc_id}, with the hit's fields) that jobs indexed before
    it still have, unless the job has been indexed again since."""
    condition = Key("PK").eq(f"TERM#{term}")
    if job:  # both layouts' keys start with the job id (ids are all 32 characters long)
        condition = condition & Key("SK").begins_with(job)
    items = store.table.query_all(condition, fields=("SK", "postings", *FIRST_LAYOUT_FIELDS))
    indexed_again = {item["SK"][:JOB_ID_CHARS] for item in items if "postings" in item}
    postings = []
    for item in items:
        if "postings" in item:
            postings += _read_postings(item["SK"][:JOB_ID_CHARS], item["postings"])
        elif item["job_id"] not in indexed_again:
            postings.append({"sk": item["SK"], "job_id": item["job_id"], "tf": int(item["tf"]), "start": float(item["start"]),
                             **({"label": item["label"]} if item.get("label") else {}), "first_layout_term": term})
    return postings


def _add_documents(store: Store, hits: list[dict]) -> None:
    """Complete keyword hits (ranked on their postings alone) with their documents' fields: one
    batch read for the hits returned, not every document of every match."""
    keyword_only = {hit["sk"]: hit for hit in hits if "sk" in hit}
    keys = []
    for sk, hit in keyword_only.items():
        job_id, doc_id = sk.split("#", 1)
        keys.append({"PK": f"TERM#{hit['first_layout_term']}", "SK": sk} if "first_layout_term" in hit
                    else {"PK": f"DOC#{job_id}", "SK": doc_id})
    for item in store.table.get_batch(keys):
        sk = item["SK"] if item["PK"].startswith("TERM#") else f"{item['job_id']}#{item['SK']}"
        keyword_only[sk].update({k: v for k, v in _plain(item).items() if k != "tf"})
    for hit in keyword_only.values():
        del hit["sk"]
        hit.pop("first_layout_term", None)


_vectors_lock = threading.Lock()
_vectors_cache: OrderedDict[tuple[str, str, str], tuple[list[dict], np.ndarray, dict[str, int], np.ndarray]] = OrderedDict()


def _job_vectors(store: Store, entry: dict) -> tuple[list[dict], np.ndarray, dict[str, int], np.ndarray]:
    """(documents, matrix, row of each document's key, each document's similarity floor) of one
    job's VECTORS entry, from S3 once per warm process and indexing of the job."""
    import numpy as np

    key = entry["key"]
    cache_key = (store.bucket, key, entry.get("indexed_at", ""))
    with _vectors_lock:
        cached = _vectors_cache.get(cache_key)
    if cached is None:
        stored = store.get_json(key)
        if stored.get("schema") != VECTORS_SCHEMA or stored.get("model") != embed.MODEL_NAME:
            raise ReelscopeError(f"{key}: vectors of another schema or model ({stored.get('schema')}, {stored.get('model')})")
        matrix = np.frombuffer(base64.b64decode(stored["vectors"]), dtype="<f4").reshape(-1, stored["dimensions"])
        rows = {f"{doc['job_id']}#{doc['doc_id']}": row for row, doc in enumerate(stored["documents"])}
        floors = np.array([min_similarity(doc) for doc in stored["documents"]], dtype="<f4")
        cached = (stored["documents"], matrix, rows, floors)
        with _vectors_lock:  # the API's request threads share the cache
            _vectors_cache[cache_key] = cached
            while len(_vectors_cache) > CACHED_JOBS:
                _vectors_cache.popitem(last=False)
    return cached


def _semantic_hits(store: Store, query: str, job: str | None, also: frozenset[str] = frozenset()) -> dict[str, dict]:
    """Documents at or above the similarity floor, and those named in `also`, with their similarity."""
    import numpy as np

    if not query.strip():
        raise BadQuery("nothing to search for")
    condition = Key("PK").eq("VECTORS") & Key("SK").eq(job) if job else Key("PK").eq("VECTORS")
    query_vector = embed.embed([query])[0]
    hits = {}
    for entry in store.table.query_all(condition, fields=("key", "indexed_at")):
        documents_, matrix, rows, floors = _job_vectors(store, entry)
        similarity = matrix @ query_vector
        # Hit dicts only for what can be returned: building one per document would cost more than the product.
        wanted = set(np.flatnonzero(similarity >= floors).tolist()) | {rows[sk] for sk in also if sk in rows}
        for row in wanted:
            doc = documents_[row]
            hits[f"{doc['job_id']}#{doc['doc_id']}"] = {**doc, "similarity": round(float(similarity[row]), 4)}
    return hits


def _hybrid_hits(store: Store, query: str, job: str | None) -> dict[str, dict]:
    try:
        keyword = _keyword_hits(store, query, job)
    except BadQuery:  # only stop words: meaning alone decides
        keyword = {}
    best = max((hit["score"] for hit in keyword.values()), default=1.0)
    blended = {}
    for sk, hit in _semantic_hits(store, query, job, also=frozenset(keyword)).items():
        matched = keyword.get(sk, {})
        blended[sk] = {**hit, "matched": matched.get("matched", []),  # the vectors' copy has every field
                       "score": KEYWORD_WEIGHT * matched.get("score", 0.0) / best
                       + (1 - KEYWORD_WEIGHT) * max(hit["similarity"], 0.0)}
    for sk, hit in keyword.items():  # a job without vectors (indexed before them) still has its words
        blended.setdefault(sk, {**hit, "similarity": None, "score": KEYWORD_WEIGHT * hit["score"] / best})
    return blended


def _plain(item: dict) -> dict:
    """A document item's fields as a hit shows them (its numbers are all times and confidences)."""
    return {k: (float(v) if isinstance(v, Decimal) else v) for k, v in item.items() if k not in ("PK", "SK")}
