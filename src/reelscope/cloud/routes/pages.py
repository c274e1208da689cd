"""The analyst's pages: the library and a job's report."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.api_gateway import Router

from reelscope.cloud.responses import (
    PAGE_NOT_FOUND,
    JobId,
    error_page,
    html_page,
    report_and_links,
    report_page,
    request_scope,
    stage_prefix,
)


def router() -> Router:
    """GET / (the library) and GET /jobs/{id}/report: the analyst's pages."""
    router = Router()
    _, store_ = request_scope(router)

    def base() -> str:
        return stage_prefix(router.current_event.raw_event)

    @router.get("/jobs/<job_id>/report", summary="A job's report page (HTML)",
             responses={200: {"description": "the page", "content": {"text/html": {}}}, **PAGE_NOT_FOUND})
    def job_page(job_id: JobId):
        store = store_()
        found = report_and_links(store, job_id)
        if found is None:
            return error_page(404, f"job {job_id} has no report")
        return report_page(store, job_id, *found, api_base=base())

    @router.get("/", summary="Where an analyst starts: the library page, every video and search across them",
             responses={200: {"description": "the page", "content": {"text/html": {}}}})
    def library():
        return html_page("library.html", "library", {"api_base": base()})

    return router
