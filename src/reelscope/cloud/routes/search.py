"""GET /search across every video."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Literal

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from reelscope.cloud.responses import (
    HEX_ID,
    LINK_TTL_S,
    caller_scope,
    error,
    ok,
    request_scope,
)
from reelscope.cloud.schemas import (
    SearchAnswer,
    answer,
)
from reelscope.errors import BadQuery
from reelscope.search import index as search

PARAMETERS = {"wall_from": "from", "wall_to": "to"}  # Filters' names for the query's


def router() -> Router:
    """GET /search."""
    router = Router()
    _, store_ = request_scope(router)
    caller_ = caller_scope(router)

    @router.get("/search", summary="Transcript segments, entity ranges, on-screen text and clock moments across "
                                   "all videos, best first, filtered and paged",
                responses={200: ok("the hits, best first", SearchAnswer)})
    def search_videos(
            q: Annotated[str | None, Query(min_length=1, max_length=500, pattern=r"\S",
                                           description="what to look for (or `like`)")] = None,
            mode: Annotated[Literal[search.MODES], Query(description="keyword: the words; semantic: the meaning; "
                                                                     "hybrid: both, fused by rank")] = "keyword",
            label: Annotated[str | None, Query(max_length=100, description="only this label's entity ranges")] = None,
            speaker: Annotated[str | None, Query(max_length=80, description="only what this speaker said: an id (S2) "
                                                                            "or the name given, in any case")] = None,
            kind: Annotated[str | None, Query(max_length=100, description="only these kinds, comma-separated: "
                                                                          + ", ".join(search.KINDS))] = None,
            language: Annotated[str | None, Query(pattern=r"^[a-z]{2,3}$", description="only speech in this "
                                                  "language (ISO 639-1: en, fr), or translated from it")] = None,
            job: Annotated[str | None, Query(pattern=HEX_ID, description="only this job")] = None,
            file: Annotated[str | None, Query(min_length=1, max_length=1024, description="only the video uploaded "
                                              "under this file name")] = None,
            uploaded_after: Annotated[str | None, Query(max_length=40, description="only videos uploaded at or after "
                                                        "this ISO 8601 date or time (UTC if no zone)")] = None,
            uploaded_before: Annotated[str | None, Query(max_length=40, description="only videos uploaded before "
                                                         "this ISO 8601 date or time")] = None,
            from_: Annotated[str | None, Query(alias="from", max_length=40, description="only what a burned-in clock "
                                               "showed at or after this date and time (the clock's own zone)")] = None,
            to: Annotated[str | None, Query(max_length=40, description="only what a burned-in clock showed at or "
                                            "before this date and time")] = None,
            like: Annotated[str | None, Query(max_length=100, description="more like this: a hit's job_id#doc_id; "
                                              "the documents nearest in meaning")] = None,
            next_: Annotated[str | None, Query(alias="next", max_length=500, description="the `next` of the page "
                                               "before: the following page of the same search")] = None,
            limit: Annotated[int, Query(ge=1, le=100)] = 20):
        store = store_()
        if q is None and like is None:
            return error(422, "q: Field required")
        try:
            filters = search.parse_filters(job=job, label=label, speaker=speaker, kind=kind, language=language,
                                           file=file, uploaded_after=uploaded_after, uploaded_before=uploaded_before,
                                           wall_from=from_, wall_to=to)
            cases = caller_().readable()
            filters = dataclasses.replace(filters, cases=tuple(sorted(cases)) if cases is not None else None)
            found = search.search((q or "").strip(), mode, filters, limit=limit, cursor=next_, like=like)
        except BadQuery as err:
            return error(422, f"{PARAMETERS.get(err.field, err.field)}: {err}")
        for hit in found["hits"]:  # a picture of the moment: an entity range's evidence frame, a segment's thumbnail
            for field in ("evidence", "thumbnail"):
                if hit.get(field):
                    hit[f"{field}_url"] = store.presigned_get(f"jobs/{hit['job_id']}/{hit[field]}", LINK_TTL_S)
        return answer(SearchAnswer, {"query": (q or "").strip(), "mode": "semantic" if like else mode, **found,
                                     "links_expire_in": LINK_TTL_S})

    return router
