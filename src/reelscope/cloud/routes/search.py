"""GET /search across every video."""

from __future__ import annotations

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from reelscope.cloud.responses import (
    HEX_ID,
    LINK_TTL_S,
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


def router() -> Router:
    """GET /search."""
    router = Router()
    _, store_ = request_scope(router)

    @router.get("/search", summary="Transcript segments and entity ranges across all videos, best first",
                responses={200: ok("the hits, best first", SearchAnswer)})
    def search_videos(
            q: Annotated[str, Query(min_length=1, max_length=500, pattern=r"\S", description="what to look for")],
            mode: Annotated[Literal[search.MODES], Query(description="keyword: the words; semantic: the meaning; "
                                                                     "hybrid: both, blended")] = "keyword",
            label: Annotated[str | None, Query(max_length=100, description="only this label's entity ranges")] = None,
            speaker: Annotated[str | None, Query(max_length=80, description="only what this speaker said: an id (S2) "
                                                                            "or the name given, in any case")] = None,
            job: Annotated[str | None, Query(pattern=HEX_ID, description="only this job")] = None,
            limit: Annotated[int, Query(ge=1, le=100)] = 20):
        store = store_()
        try:
            hits = search.search(store, q.strip(), mode, job=job, label=label, limit=limit, speaker=speaker)
        except BadQuery as err:
            return error(422, f"q: {err}")
        for hit in hits:  # a picture of the moment: an entity range's evidence frame, a segment's thumbnail
            for field in ("evidence", "thumbnail"):
                if hit.get(field):
                    hit[f"{field}_url"] = store.presigned_get(f"jobs/{hit['job_id']}/{hit[field]}", LINK_TTL_S)
        return answer(SearchAnswer, {"query": q.strip(), "mode": mode, "hits": hits, "links_expire_in": LINK_TTL_S})

    return router
