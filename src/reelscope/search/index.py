"""Search across every video: keyword (BM25 full text), semantic (sentence embeddings, cosine) and
hybrid (both, fused by rank), on the engine's tables (engine.py), with filters pushed into the
engine, a cursor for the next page and counts per kind, job and label.

Documents are a job's transcript segments (and their English translation), its entity ranges (an
entity's text is its label, so "dog" finds dog ranges), its on-screen texts and its overlays, each
with its speaker, language, times on the video and on its burned-in clock, upload time and file
name. A job's vectors are also its artifact search/vectors.json: `reelscope reindex` rebuilds the
tables from the artifacts without embedding again.

Wall clock: a query that is a time or a date and time ("17:20", "2025-07-02 17:20:05") also
finds the moments whose burned-in clock showed it, first, as hits of kind "moment".
"""

from __future__ import annotations

import base64
import binascii
import bisect
import concurrent.futures
import datetime as dt
import functools
import hashlib
import json
import re
import unicodedata
from collections import Counter
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

from reelscope.analysis import reports, wallclock
from reelscope.artifacts import dumps
from reelscope.errors import BadQuery, ReelscopeError
from reelscope.search import embed, engine

if TYPE_CHECKING:
    import numpy as np

STOP_WORDS = frozenset("a an and are as at be but by for from has have in is it its of on or that the this to was "
                       "were will with".split())
SNIPPET_CHARS = 200
MODES = ("keyword", "semantic", "hybrid")
KINDS = ("transcript", "translation", "entity", "text", "overlay", "moment")
VECTORS_SCHEMA = "reelscope.vectors/1"
VECTORS_PATH = "search/vectors.json"
# Below its kind's floor a semantic "match" is noise and is not returned; bench/bench_embed.py
# measures both kinds on known related and unrelated queries. A transcript segment is a sentence:
# unrelated sentences reach 0.28 against the nearest one, paraphrases 0.44 and up. An entity's text
# is one or two words, and short texts crowd together: an unrelated word scores 0.43 against its
# nearest COCO label at the median and 0.67 at most ("purple" and "orange"), while "a dog",
# "canine", "puppy" or "vehicle" score 0.70-0.91 against theirs. On-screen text is either: a
# caption of three words or more takes a sentence's floor, a word or two (a sign: "emisiones")
# a label's ("car" scores 0.34 against "emisiones").
MIN_SIMILARITY = {"transcript": 0.3, "entity": 0.6}
SHORT_TEXT_WORDS = 2
RRF_K = 60  # reciprocal rank fusion's constant (Cormack et al. 2009; LanceDB's RRFReranker's too)
MAX_QUERY_TERMS = 32  # a pasted page is not a search
MAX_DEPTH = 1_000  # how deep the pages of one search go (offset + limit)
FACETS_OF = 1_000  # facets count the best this many hits
FACET_VALUES = 20  # per facet, the most frequent
CLOCK_FORMAT = "%Y-%m-%dT%H:%M:%S"
SHOWN = ("job_id", "doc_id", "kind", "file_name", "start", "end", "label", "speaker", "speaker_name", "language",
         "source_language", "confidence", "evidence", "thumbnail", "wall_start", "wall_end")


@dataclass(frozen=True)
class Filters:
    """What a search keeps; None keeps everything. Times: `uploaded_*` ISO 8601 (UTC when no zone
    is given), `wall_from`/`wall_to` the burned-in clock's own time."""
    job: str | None = None
    label: str | None = None
    speaker: str | None = None
    kind: tuple[str, ...] | None = None
    language: str | None = None
    file: str | None = None
    uploaded_after: str | None = None
    uploaded_before: str | None = None
    wall_from: str | None = None
    wall_to: str | None = None
    cases: tuple[str, ...] | None = None  # the cases the caller reads (None: every case); never from the query


def min_similarity(doc: dict) -> float:
    """A document's semantic floor (see MIN_SIMILARITY)."""
    if doc["kind"] in ("text", "overlay"):
        return MIN_SIMILARITY["entity" if len(doc["text"].split()) <= SHORT_TEXT_WORDS else "transcript"]
    return MIN_SIMILARITY["transcript" if doc["kind"] == "translation" else doc["kind"]]


def terms(text: str) -> list[str]:
    """The words of a text as a hit's `matched` lists them: lower case, accents folded, stop words
    dropped, a plural "s" trimmed."""
    folded = unicodedata.normalize("NFKD", text.lower()).encode("ascii", "ignore").decode()
    words = re.findall(r"[a-z0-9]+", folded)
    return [w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w
            for w in words if w not in STOP_WORDS]


def documents(report: dict, uploaded_at: str, case: str) -> list[dict]:
    """The searchable pieces of one job's report, each with a picture of its moment: an entity
    range (an object, on-screen text, an overlay) its evidence frame, a transcript segment (and
    its English translation, for speech in another language) the last thumbnail at or before its start."""
    thumbnails = report.get("thumbnails") or []
    starts = [thumbnail["t"] for thumbnail in thumbnails]
    clock = report.get("wall_clock")

    def shared(start: float, end: float) -> dict:
        before = bisect.bisect_right(starts, start) - 1
        walls = [wallclock.wall_time(clock, t) for t in (start, end)]
        return {"start": start, "end": end, "job_id": report["source"]["job_id"], "case_id": case,
                "file_name": report["source"]["file_name"], "uploaded_at": uploaded_at,
                **({"thumbnail": thumbnails[max(before, 0)]["path"]} if thumbnails else {}),
                **({"wall_start": walls[0], "wall_end": walls[1]} if "T" in walls[0] else {})}  # a clock with a date

    names = reports.speaker_names(report)
    docs = [{"doc_id": f"seg-{s['id']}", "kind": "transcript", "text": s["text"], **shared(s["start"], s["end"]),
             **({"language": s["language"]} if s.get("language") else {}),
             **({"speaker": s["speaker"], "speaker_name": names.get(s["speaker"], s["speaker"])} if s.get("speaker") else {})}
            for s in report["transcript"]]
    docs += [{"doc_id": f"en-{s['id']}", "kind": "translation", "text": s["text"], "language": "en",
              "source_language": s["source_language"], **shared(s["start"], s["end"])}
             for s in report.get("translation", [])]
    for e in report["entities"]:
        seen = e["kind"] in ("text", "overlay")
        docs.append({"doc_id": f"ent-{e['id']}", "kind": e["kind"] if seen else "entity",
                     "text": e["text"] if seen else e["label"] + (" animal" if e["animal"] else ""),
                     **({} if seen else {"label": e["label"]}), **shared(e["start"], e["end"]),
                     "confidence": e["peak_confidence"], "evidence": e["evidence"]["path"],
                     "thumbnail": e["evidence"]["path"]})
    return docs


def index_documents(job_id: str, report: dict, folder: Path, uploaded_at: str, case: str) -> tuple[int, str]:
    """Embed the job's documents, write them as the job's search/vectors.json under `folder`, and
    make them the job's rows in the engine (replacing what an earlier run indexed). Returns how
    many documents were indexed and the vectors' relative path (the caller uploads it)."""
    docs = documents(report, uploaded_at, case)
    vectors = embed.embed([doc["text"] for doc in docs])
    path = Path(folder) / VECTORS_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(vectors_document(docs, vectors)), encoding="utf-8")
    engine.replace_job(job_id, rows(docs, vectors), clock_row(report, uploaded_at, case))
    return len(docs), VECTORS_PATH


def vectors_document(docs: list[dict], vectors: np.ndarray) -> dict:
    """A job's search/vectors.json: its documents and one vector per document."""
    return {"schema": VECTORS_SCHEMA, "model": embed.MODEL_NAME, "dimensions": embed.DIMENSIONS,
            "documents": docs, "vectors": base64.b64encode(vectors.astype("<f4").tobytes()).decode()}


def stored_vectors(stored: dict, where: str) -> tuple[list[dict], np.ndarray]:
    """The documents and vectors of a search/vectors.json (`where` names it in errors)."""
    import numpy as np

    if stored.get("schema") != VECTORS_SCHEMA or stored.get("model") != embed.MODEL_NAME:
        raise ReelscopeError(f"{where}: vectors of another schema or model ({stored.get('schema')}, {stored.get('model')})")
    vectors = np.frombuffer(base64.b64decode(stored["vectors"]), dtype="<f4").reshape(-1, stored["dimensions"])
    return stored["documents"], vectors


def rows(docs: list[dict], vectors: np.ndarray) -> list[dict]:
    return [{**doc, "uid": f"{doc['job_id']}#{doc['doc_id']}", "min_similarity": min_similarity(doc), "vector": vector}
            for doc, vector in zip(docs, vectors)]


def clock_row(report: dict, uploaded_at: str, case: str) -> dict | None:
    clock = report.get("wall_clock")
    if not clock:
        return None
    last = clock["pieces"][-1]
    end = wallclock.wall_time(clock, last["video_end"])
    return {"job_id": report["source"]["job_id"], "case_id": case, "file_name": report["source"]["file_name"],
            "uploaded_at": uploaded_at, "pieces": json.dumps(clock["pieces"]), "wall_start": clock["pieces"][0]["wall_start"],
            "wall_end": end}


# ---------------------------------------------------------------- queries

def search(query: str = "", mode: str = "keyword", filters: Filters = Filters(), limit: int = 20,
           cursor: str | None = None, like: str | None = None, uri: str | None = None) -> dict:
    """{hits (best first), next (a cursor for the next page, None on the last), facets (on the
    first page: hits per kind, job and label among the best FACETS_OF)}. `like` ("JOB_ID#DOC_ID")
    finds the documents nearest in meaning to that one instead of a query. Raises BadQuery naming
    the parameter at fault."""
    if mode not in MODES:
        raise BadQuery(f"mode must be one of {', '.join(MODES)}", "mode")
    if not query.strip() and not like:
        raise BadQuery("nothing to search for")
    where = _where(filters)
    digest = hashlib.sha256(json.dumps([query, mode, asdict(filters), like], default=str).encode()).hexdigest()[:16]
    versions, offset = _read_cursor(cursor, digest) if cursor else (None, 0)
    if offset + limit > MAX_DEPTH:
        raise BadQuery(f"pages go {MAX_DEPTH} hits deep; narrow the search with filters", "next")
    documents_ = engine.open_table(engine.DOCUMENTS, uri, versions and versions[0])
    clocks = engine.open_table(engine.CLOCKS, uri, versions and versions[1])
    wall = wallclock.parse_query(query) if not like else None
    moments = _moments(clocks, wall, filters) if wall else []
    depth = max(offset + limit + 1 - len(moments), 1)
    try:
        ranked, counted = _read(documents_, query, mode, where, depth, like, facets=cursor is None, readable=_in_cases(filters))
    except BadQuery:
        if not moments:
            raise
        ranked = counted = []
    hits = moments + ranked
    page = hits[offset:offset + limit]
    query_terms = set(terms(query))
    for hit in page:
        hit["score"] = round(hit["score"], 4)
        hit["link"] = f"/jobs/{hit['job_id']}/report#t={hit['start']:.2f}"
        if hit["kind"] != "moment" and mode != "semantic" and not like:
            hit["matched"] = sorted(query_terms & set(terms(hit["snippet"])))
    more = len(hits) > offset + limit and offset + limit < MAX_DEPTH
    table_versions = [table.version if table is not None else 0 for table in (documents_, clocks)]
    return {"hits": page, "next": _write_cursor(table_versions, offset + limit, digest) if more else None,
            "facets": _facets((moments + counted)[:FACETS_OF]) if cursor is None else None}


_reads = concurrent.futures.ThreadPoolExecutor(8, thread_name_prefix="search-read")  # the engine frees the GIL


def _read(table, query: str, mode: str, where: str | None, depth: int, like: str | None,
          facets: bool, readable: str | None = None) -> tuple[list[dict], list[dict]]:
    """(the ranked hits to `depth`, those the facets count: a deeper, narrower and rougher read, the
    ANN's distances not refined). The engine's reads run at once; none waits on another."""
    if table is None:
        return [], []
    indexes = engine.searchable_by(table)  # once a search: both reads of each kind need to know
    if like:
        vector, where = _vector_of(table, like, readable), _and(where, f"uid != {engine.quoted(like)}")
    elif mode != "keyword":
        vector = embed.embed([query])[0]
    words = mode != "semantic" and not like
    if words:
        try:
            _checked_terms(query)
        except BadQuery:
            if mode == "keyword":
                raise
            words = False  # only stop words: meaning alone decides
    reads = []  # per read: the page's (0) or the facets' (1), and the read
    for part, (wanted, columns, refine) in enumerate(((depth, COLUMNS, True), (FACETS_OF, FACET_COLUMNS, False))):
        if part and not facets:
            break
        if words and "text" in indexes:  # before the first job's index, nothing has words to find
            reads.append((part, functools.partial(_keyword, table, query, where, wanted, columns)))
        if mode != "keyword" or like:
            reads.append((part, functools.partial(_semantic, table, vector, where, wanted, columns, refine, "vector" in indexes)))
    futures = [(part, _reads.submit(read)) for part, read in reads]
    found = [[future.result() for part, future in futures if part == wanted] for wanted in (0, 1)]
    ranked, counted = ((_fused(*lists) if len(lists) == 2 else lists[0] if lists else []) for lists in found)
    return ranked[:depth], counted[:FACETS_OF]


def _checked_terms(query: str) -> set[str]:
    query_terms = set(terms(query))
    if not query_terms:
        raise BadQuery("no searchable words (only stop words or punctuation)")
    if len(query_terms) > MAX_QUERY_TERMS:
        raise BadQuery(f"{len(query_terms)} distinct searchable words; at most {MAX_QUERY_TERMS}")
    return query_terms


COLUMNS = [*SHOWN, "text", "min_similarity"]
FACET_COLUMNS = ["job_id", "doc_id", "kind", "label", "file_name", "start", "min_similarity"]


def _keyword(table, query: str, where: str | None, depth: int, columns: list[str]) -> list[dict]:
    found = _where_applied(table.search(query, query_type="fts", fts_columns="text"), where).select([*columns, "_score"])
    return _sorted([_hit(row, row["_score"]) for row in found.limit(depth).to_list()])


def _semantic(table, vector, where: str | None, depth: int, columns: list[str], refine: bool, ann: bool) -> list[dict]:
    """Documents at or above their similarity floor. The engine stops at the lowest floor; a
    document under its own (higher) one is dropped here, and the engine read deeper for them.
    With an ANN index (`ann`) its candidates are re-ranked on the full vectors (`refine`); the floor
    is then judged here on the exact distances, not in the engine on the quantized ones (a true
    match whose quantized distance fell past the floor was lost), and the read goes no deeper
    once its farthest row is past the lowest floor."""
    asked, lowest = depth, min(MIN_SIMILARITY.values())
    while True:
        search = table.search(vector, vector_column_name="vector").distance_type("cosine")
        if not ann:
            search = search.distance_range(upper_bound=1 - lowest)
        else:
            search = search.nprobes(engine.ANN_NPROBES if refine else engine.ANN_ROUGH_NPROBES)
            if refine:
                search = search.refine_factor(engine.ANN_REFINE)
        found = _where_applied(search, where).select([*columns, "_distance"]).limit(asked).to_list()
        hits = [{**_hit(row, 1 - row["_distance"]), "similarity": round(1 - row["_distance"], 4)}
                for row in found if 1 - row["_distance"] >= row["min_similarity"]]
        if len(hits) >= depth or len(found) < asked or (found and 1 - found[-1]["_distance"] < lowest):
            return _sorted(hits)[:depth]
        asked *= 4


def _fused(keyword: list[dict], semantic: list[dict]) -> list[dict]:
    """Reciprocal rank fusion: each list gives a document 1 / (RRF_K + its rank)."""
    fused: dict[str, dict] = {}
    for ranked in (keyword, semantic):
        for rank, hit in enumerate(ranked, 1):
            uid = f"{hit['job_id']}#{hit['doc_id']}"
            entry = fused.setdefault(uid, {**hit, "score": 0.0, "similarity": None})
            entry["score"] += 1 / (RRF_K + rank)
            if hit.get("similarity") is not None:
                entry["similarity"] = hit["similarity"]
    return _sorted(list(fused.values()))


def _vector_of(table, like: str, readable: str | None):
    """The vector of a document the caller may read (`readable`: their cases' condition)."""
    if not re.fullmatch(r"[0-9a-f]{32}#[\w.-]{1,64}", like):
        raise BadQuery("a hit's job_id#doc_id, as a hit gives them", "like")
    found = table.search().where(_and(f"uid = {engine.quoted(like)}", readable)).select(["vector"]).limit(1).to_list()
    if not found:
        raise BadQuery(f"no indexed document {like}", "like")
    return found[0]["vector"]


def _where_applied(search, where: str | None):
    return search.where(where, prefilter=True) if where else search


def _hit(row: dict, score: float) -> dict:
    shown = {k: row[k] for k in SHOWN if row.get(k) is not None}
    return {**shown, **({"snippet": row["text"][:SNIPPET_CHARS]} if "text" in row else {}), "score": score}


def _sorted(hits: list[dict]) -> list[dict]:
    return sorted(hits, key=lambda h: (-h["score"], h["job_id"], h["start"], h["doc_id"]))


def _and(*parts: str | None) -> str | None:
    present = [f"({part})" for part in parts if part]
    return " AND ".join(present) or None


def _where(f: Filters) -> str | None:
    """The filters as the engine's SQL, every value a quoted literal."""
    q = engine.quoted
    parts = [_in_cases(f),
             f"job_id = {q(f.job)}" if f.job else None,
             f"label = {q(f.label)}" if f.label else None,
             f"(lower(speaker) = {q(f.speaker.casefold())} OR lower(speaker_name) = {q(f.speaker.casefold().strip())})"
             if f.speaker else None,
             f"kind IN ({', '.join(q(k) for k in f.kind)})" if f.kind else None,
             f"(language = {q(f.language)} OR source_language = {q(f.language)})" if f.language else None,
             f"file_name = {q(f.file)}" if f.file else None,
             f"uploaded_at >= {q(f.uploaded_after)}" if f.uploaded_after else None,
             f"uploaded_at < {q(f.uploaded_before)}" if f.uploaded_before else None,
             f"wall_end >= {q(f.wall_from)}" if f.wall_from else None,
             f"wall_start <= {q(f.wall_to)}" if f.wall_to else None]
    return _and(*parts)


def _in_cases(f: Filters) -> str | None:
    """The caller's cases, inside the engine: a row of another case is never read."""
    if f.cases is None:
        return None
    return f"case_id IN ({', '.join(engine.quoted(c) for c in sorted(f.cases))})" if f.cases else "FALSE"


def _moments(clocks, wall: dict, f: Filters) -> list[dict]:
    """The moments each burned-in clock showed the queried time, before any other hit; only with
    filters a moment can meet (not a label, speaker or language: a moment has none)."""
    if clocks is None or f.label or f.speaker or f.language or (f.kind and "moment" not in f.kind):
        return []
    q = engine.quoted
    where = _and(_in_cases(f), f"job_id = {q(f.job)}" if f.job else None, f"file_name = {q(f.file)}" if f.file else None,
                 f"uploaded_at >= {q(f.uploaded_after)}" if f.uploaded_after else None,
                 f"uploaded_at < {q(f.uploaded_before)}" if f.uploaded_before else None)
    if wall["date"] is not None:  # a date: only the clocks that cover it
        day = wall["date"].isoformat()
        where = _and(where, f"wall_start < {q(day + 'T24')} AND wall_end >= {q(day)}")
    search = clocks.search()
    hits = []
    for row in (search.where(where) if where else search).limit(None).to_list():
        clock = {"pieces": json.loads(row["pieces"])}
        for t in wallclock.moments(clock, wall):
            shown = wallclock.wall_time(clock, t)
            if (f.wall_from and shown < f.wall_from) or (f.wall_to and shown > f.wall_to):
                continue
            hits.append({"job_id": row["job_id"], "file_name": row["file_name"], "doc_id": f"clock-{t:.3f}",
                         "kind": "moment", "start": t, "end": t + wall["span"], "wall_time": shown, "score": 1.0,
                         "snippet": f"{shown.replace('T', ' ')} on the burned-in clock"})
    return sorted(hits, key=lambda h: (h["job_id"], h["start"]))


def _facets(hits: list[dict]) -> dict:
    counted = {name: Counter(hit[field] for hit in hits if hit.get(field))
               for name, field in (("kind", "kind"), ("job", "job_id"), ("label", "label"))}
    files = {hit["job_id"]: hit["file_name"] for hit in hits}
    return {"of": len(hits), **{name: [{"value": value, "hits": n, **({"file_name": files[value]} if name == "job" else {})}
                                       for value, n in sorted(counts.items(), key=lambda c: (-c[1], c[0]))[:FACET_VALUES]]
                                for name, counts in counted.items()}}


def _write_cursor(versions: list[int], offset: int, digest: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"v": versions, "o": offset, "q": digest}).encode()).decode().rstrip("=")


def _read_cursor(cursor: str, digest: str) -> tuple[list[int], int]:
    try:
        read = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        versions, offset, of = read["v"], read["o"], read["q"]
        assert isinstance(offset, int) and offset > 0 and all(isinstance(v, int) and v >= 0 for v in versions)
        assert len(versions) == 2
    except (ValueError, KeyError, TypeError, AssertionError, binascii.Error):
        raise BadQuery("not a cursor this search gave", "next") from None
    if of != digest:
        raise BadQuery("the cursor of another search (query, mode or filters changed)", "next")
    return [v or None for v in versions], offset


def parse_filters(**given) -> Filters:
    """Filters from GET /search's parameters, each checked: BadQuery names the one at fault."""
    values = dict(given)
    if values.get("kind"):
        kinds = tuple(sorted({k.strip() for k in values["kind"].split(",") if k.strip()}))
        unknown = [k for k in kinds if k not in KINDS]
        if unknown or not kinds:
            raise BadQuery(f"{', '.join(unknown) or 'nothing'} is not a kind; kinds: {', '.join(KINDS)}", "kind")
        values["kind"] = kinds
    for name in ("uploaded_after", "uploaded_before"):
        if values.get(name):
            values[name] = _instant(values[name], name)
    for name in ("wall_from", "wall_to"):
        if values.get(name):
            values[name] = _clock_time(values[name], name)
    return Filters(**{field.name: values.get(field.name) or None for field in fields(Filters)})


def _instant(text: str, name: str) -> str:
    """An ISO 8601 date or date and time as the uploads' times are written (UTC, milliseconds)."""
    try:
        moment = dt.datetime.fromisoformat(text.strip().replace(" ", "T", 1))
    except ValueError:
        raise BadQuery(f"{text!r} is not an ISO 8601 date or date and time (2026-03-01, 2026-03-01T08:30Z)", name) from None
    moment = moment.replace(tzinfo=moment.tzinfo or dt.timezone.utc).astimezone(dt.timezone.utc)
    return moment.isoformat(timespec="milliseconds")


def _clock_time(text: str, name: str) -> str:
    """A date and time as a burned-in clock shows it (its own zone): a zone given is refused."""
    try:
        moment = dt.datetime.fromisoformat(text.strip().replace(" ", "T", 1))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is not None:
        raise BadQuery(f"{text!r} is not a date and time as the clock shows it (2023-11-14T22:13:20, no zone)", name)
    return moment.strftime(CLOCK_FORMAT)
