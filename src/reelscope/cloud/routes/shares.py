"""Read-only share links and the pages and JSON they open."""

from __future__ import annotations

import secrets
import time
from typing import Annotated

from aws_lambda_powertools.event_handler import (
    Response,
    content_types,
)
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body

from reelscope.cloud.responses import (
    GONE,
    LINK_TTL_S,
    NOT_FOUND,
    PAGE_NOT_FOUND,
    TOKEN,
    JobId,
    error,
    error_page,
    ok,
    report_and_links,
    report_page,
    request_scope,
    token_hash,
)
from reelscope.cloud.schemas import (
    ShareCreated,
    SharedReport,
    ShareRequest,
    answer,
)


def router() -> Router:
    """Share links: POST and DELETE /jobs/{id}/shares, GET /s/{token} and its page."""
    router = Router()
    settings_, store_ = request_scope(router)

    @router.post("/jobs/<job_id>/shares", summary="A read-only share link to one job's report",
              responses={201: ok("the token (shown once) and its path", ShareCreated), **NOT_FOUND})
    def create_share(job_id: JobId, request: Annotated[ShareRequest | None, Body()] = None):
        settings, store = settings_(), store_()
        if store.job(job_id) is None:
            return error(404, f"job {job_id} not found")
        lifetime = request.expires_in_s if request and request.expires_in_s is not None else settings.share_default_s
        if lifetime > settings.share_max_s:
            return error(422, f"expires_in_s: at most {settings.share_max_s}")
        token = secrets.token_urlsafe(24)  # 192 bits, 32 characters
        expires_at = int(time.time()) + lifetime
        store.put_share(token_hash(token), job_id, expires_at)
        return Response(status_code=201, content_type=content_types.APPLICATION_JSON,
                        body=answer(ShareCreated, {"token": token, "path": f"/s/{token}", "job_id": job_id,
                                                   "expires_at": expires_at}))

    @router.delete("/jobs/<job_id>/shares/<token>", summary="Revoke a share link",
                responses={204: {"description": "revoked"}, **NOT_FOUND})
    def revoke_share(job_id: JobId, token: str):
        store = store_()
        share = store.share(token_hash(token)) if TOKEN.fullmatch(token) else None
        if share is None or share["job_id"] != job_id:
            return error(404, "share link not found")
        store.revoke_share(token_hash(token))
        return Response(status_code=204, content_type=content_types.APPLICATION_JSON, body="")

    def shared(token: str) -> tuple[str, dict, dict] | tuple[int, str]:
        """(job id, report, links) of a live link, or (status, why not)."""
        store = store_()
        share = store.share(token_hash(token)) if TOKEN.fullmatch(token) else None
        if share is None:
            return 404, "share link not found"
        if share["revoked"] or share["expires_at"] <= time.time():
            return 410, "share link " + ("revoked" if share["revoked"] else "expired")
        found = report_and_links(store, share["job_id"])
        return (share["job_id"], *found) if found else (404, f"job {share['job_id']} has no report")

    @router.get("/s/<token>", summary="A shared report's page (HTML; no credentials: the token is one)",
             responses={200: {"description": "the page", "content": {"text/html": {}}}, **PAGE_NOT_FOUND,
                        410: {"description": "the link expired or was revoked (a page)", "content": {"text/html": {}}}})
    def shared_page(token: str):
        found = shared(token)
        if len(found) == 2:
            return error_page(*found)
        return report_page(store_(), *found, api_base=None)

    @router.get("/s/<token>/report.json", summary="A shared report and links to its files",
             responses={200: ok("the report", SharedReport), **NOT_FOUND, **GONE})
    def shared_report(token: str):
        found = shared(token)
        if len(found) == 2:
            return error(*found)
        return answer(SharedReport, {"report": found[1], "links": found[2], "links_expire_in": LINK_TTL_S})

    return router
