"""The jobs: list, detail, artifacts, and what an analyst changes of a job."""

from __future__ import annotations

import csv
import io
import json
from typing import Annotated, Literal

from aws_lambda_powertools.event_handler import (
    Response,
    content_types,
)
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query

from reelscope.access import audit
from reelscope.access.roles import case_of
from reelscope.cloud import eta, jobs
from reelscope.cloud.responses import (
    ERROR_BODY,
    LINK_TTL_S,
    NOT_FOUND,
    PAGED_KINDS,
    JobId,
    artifact_kinds,
    artifact_links,
    caller_scope,
    error,
    manifest_of,
    ok,
    page_start,
    page_token,
    request_scope,
    settled,
    trail_start,
)
from reelscope.cloud.schemas import (
    ArtifactsPage,
    AuditPage,
    JobDeleted,
    JobDetail,
    JobsPage,
    RunQueued,
    SpeakerNamesRequest,
    SpeakersNamed,
    answer,
)
from reelscope.errors import BadNames, NotFound
from reelscope.status import FINISHED, JOB_STATUSES
from reelscope.store import artifact_key


def changes(client) -> Router:
    """POST /jobs/{id}/runs, PUT /jobs/{id}/speakers, DELETE /jobs/{id}: what an analyst changes of a job."""
    router = Router()
    settings_, store_ = request_scope(router)

    @router.delete("/jobs/<job_id>", summary="Delete a job: every object, item and search row of it (the audit "
                   "trail keeps that it was)", responses={200: ok("what was removed", JobDeleted), **NOT_FOUND,
                   409: {"description": "the job runs, or its case is on hold", "content": ERROR_BODY}})
    def delete_job(job_id: JobId):
        try:
            deleted = jobs.delete_job(job_id, settings_(), store_())
        except NotFound as err:
            return error(404, str(err))
        except (jobs.JobBusy, jobs.CaseHeld) as err:
            return error(409, str(err))
        return answer(JobDeleted, deleted)

    @router.post("/jobs/<job_id>/runs", summary="Run a finished job again (a new execution on the same upload)",
              responses={202: ok("queued: follow GET /jobs/{id}", RunQueued), **NOT_FOUND,
                         409: {"description": "the job is queued or running", "content": ERROR_BODY}})
    def run_again(job_id: JobId):
        try:
            run = jobs.rerun(job_id, settings_(), client("stepfunctions"), store_())
        except NotFound as err:
            return error(404, str(err))
        except jobs.JobBusy as err:
            return error(409, str(err))
        return Response(status_code=202, content_type=content_types.APPLICATION_JSON,
                        body=answer(RunQueued, {**run, "status_path": f"/jobs/{job_id}"}))

    @router.put("/jobs/<job_id>/speakers", summary="Name a job's speakers (S2 -> \"Inspector Lee\"): the page, the "
                "exports and search show the names",
                responses={200: ok("the names kept, and the run that puts them into the exports", SpeakersNamed),
                           **NOT_FOUND, 422: {"description": "an id the job did not find", "content": ERROR_BODY}})
    def name_speakers(job_id: JobId, request: Annotated[SpeakerNamesRequest, Body()]):
        try:
            named = jobs.name_speakers(job_id, request.names, settings_(), client("stepfunctions"), store_())
        except NotFound as err:
            return error(404, str(err))
        except BadNames as err:
            return error(422, f"names: {err}")
        return answer(SpeakersNamed, named)

    return router


def router() -> Router:
    """GET /jobs, GET /jobs/{id}, GET /jobs/{id}/artifacts."""
    router = Router()
    _, store_ = request_scope(router)
    caller_ = caller_scope(router)

    @router.get("/jobs", summary="Jobs, newest first", responses={200: ok("one page of jobs", JobsPage)})
    def list_jobs(status: Annotated[Literal[JOB_STATUSES] | None, Query()] = None,
                  limit: Annotated[int, Query(ge=1, le=100)] = 20,
                  page: Annotated[str | None, Query(alias="next", max_length=2000,
                                                    description="`next` of the previous page")] = None):
        start = page_start(page) if page is not None else None
        cases = caller_().readable()
        if start is False or (start and ("by_case" in start) != (cases is not None)):
            return error(422, "next: not a page token from this API")
        store = store_()
        jobs, last = store.list_jobs(limit, status=status, start=start, cases=cases)
        listed = [{"job_id": job["job_id"], "case_id": case_of(job), "status": job["status"],
                   "file_name": job.get("source_file_name"),
                   "created_at": job["created_at"], "finished_at": job.get("finished_at"),
                   "duration_s": job.get("media", {}).get("duration_s"),
                   "report_path": f"/jobs/{job['job_id']}/report" if "manifest_key" in job else None,
                   "poster_url": store.presigned_get(job["poster_key"], LINK_TTL_S) if "poster_key" in job else None,
                   "error": job.get("error"), "speakers": job.get("speakers", [])}
                  for job in jobs]
        return answer(JobsPage, {"jobs": listed, "next": page_token(last), "links_expire_in": LINK_TTL_S})

    @router.get("/jobs/<job_id>", summary="A job: status, steps with timings, media facts, links to its artifacts",
             responses={200: ok("the job", JobDetail), **NOT_FOUND})
    def get_job(job_id: JobId):
        store = store_()
        job = store.job(job_id)
        if job is None:
            return error(404, f"job {job_id} not found")
        hidden = {"PK", "SK", "entity", "ttl"}
        manifest = manifest_of(store, job)
        steps = settled(store, job, "steps", lambda: store.steps(job_id, run=int(job.get("run", 1))))
        return answer(JobDetail, {"job": {k: v for k, v in job.items() if k not in hidden},
                                  "steps": {name: {k: v for k, v in step.items() if k not in hidden | {"job_id"}}
                                            for name, step in steps.items()},
                                  "progress": eta.progress(job, steps, store.step_rates()) if job["status"] not in FINISHED
                                  else None,
                                  "artifacts": artifact_kinds(manifest) if manifest else {},
                                  "links": artifact_links(store, job_id, manifest, PAGED_KINDS) if manifest else {},
                                  "links_expire_in": LINK_TTL_S})

    @router.get("/jobs/<job_id>/artifacts", summary="A job's artifacts of one kind, a page at a time, with links",
                responses={200: ok("a page of artifacts", ArtifactsPage), **NOT_FOUND})
    def list_artifacts(job_id: JobId, kind: Annotated[str, Query(max_length=40, pattern=r"^[a-z-]+$")],
                       limit: Annotated[int, Query(ge=1, le=500)] = 100,
                       page: Annotated[str | None, Query(alias="next", max_length=20, pattern=r"^[0-9]+$",
                                                         description="`next` of the previous page")] = None):
        store = store_()
        job = store.job(job_id)
        manifest = manifest_of(store, job) if job else None
        if manifest is None:
            return error(404, f"job {job_id} has no artifacts yet")
        start = int(page or 0)
        of_kind = [a for a in manifest["artifacts"] if a["kind"] == kind]
        shown = [{**a, "url": store.presigned_get(f"jobs/{job_id}/{a['path']}", LINK_TTL_S)}
                 for a in of_kind[start: start + limit]]
        following = str(start + limit) if start + limit < len(of_kind) else None
        return answer(ArtifactsPage, {"artifacts": shown, "next": following, "links_expire_in": LINK_TTL_S})

    return router


def records() -> Router:
    """GET /jobs/{id}/exports/{name} and GET /jobs/{id}/audit: what is downloaded and recorded of a job."""
    router = Router()
    settings_, store_ = request_scope(router)

    @router.get("/jobs/<job_id>/exports/<name>", summary="Download one of a job's exports (report.json, report.csv, "
                "report.pdf...): recorded in its audit trail, then sent on to the file",
                responses={302: {"description": "Location: the file, presigned"}, **NOT_FOUND})
    def download_export(job_id: JobId, name: Annotated[str, Path(pattern=r"^[A-Za-z0-9._-]{1,100}$")]):
        store = store_()
        job = store.job(job_id)
        manifest = manifest_of(store, job) if job else None
        if manifest is None or not any(a["path"] == name for a in manifest["artifacts"]):
            return error(404, f"job {job_id} has no export {name}")
        return Response(status_code=302, content_type=content_types.APPLICATION_JSON, body="",
                        headers={"Location": store.presigned_get(artifact_key(job_id, name), LINK_TTL_S)})

    @router.get("/jobs/<job_id>/audit", summary="A job's audit trail, oldest first (admins; kept after the job is deleted)",
                responses={200: TRAIL, **NOT_FOUND})
    def job_audit(job_id: JobId, limit: Annotated[int, Query(ge=1, le=1000)] = 200,
                  page: Annotated[str | None, Query(alias="next", max_length=500)] = None,
                  form: Annotated[Literal["json", "csv"], Query(alias="format")] = "json"):
        return audit_page(settings_(), page, limit, form, job_id=job_id)

    return router


TRAIL = {"description": "a page of records: JSON, or CSV with ?format=csv",
         "content": {"application/json": {"model": AuditPage}, "text/csv": {}}}
AUDIT_COLUMNS = ("at", "action", "user", "role", "job_id", "case_id", "source_ip", "user_agent", "detail")


def audit_page(settings, page: str | None, limit: int, form: str, job_id: str | None = None, day: str = "") -> Response | dict:
    """One page of a trail (a job's or a day's) as GET .../audit answers it: JSON, or CSV to keep
    (the next page's token in the Link header)."""
    start = None
    if page is not None:
        start = trail_start(page)
        if start is None:
            return error(422, "next: not a page token from this API")
    records, last = audit.read(settings, job_id=job_id, day=day, limit=limit, start=start)
    if form == "json":
        return answer(AuditPage, {"records": records, "next": page_token(last)})
    table = io.StringIO()
    writer = csv.DictWriter(table, AUDIT_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows({**record, "detail": json.dumps(record["detail"], sort_keys=True)} for record in records)
    name = f"audit-{job_id or day}.csv"
    return Response(status_code=200, content_type="text/csv; charset=utf-8", body=table.getvalue(), headers={
        "Content-Disposition": f'attachment; filename="{name}"', **({"Link": f'<?next={page_token(last)}>; rel="next"'}
                                                                   if last else {})})
