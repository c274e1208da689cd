"""The REST API behind API Gateway: one Lambda, the Powertools REST resolver with validation.
Parameters and bodies are declared with types; the resolver checks them and writes the OpenAPI
document (GET /openapi.json, kept in docs/openapi.json). Every route:

POST /uploads                     a presigned POST: the browser uploads straight to S3 under uploads/
POST /ingest {url}                fetch a video from a URL into uploads/ (checked against SSRF, fetch.py);
                                  202 with a fetch id; the fetch runs in the fetch function
GET  /ingest/{id}                 QUEUED, SUCCEEDED (the upload then starts a job) or FAILED with the reason
GET  /jobs                        jobs, newest first, paged; ?status= keeps one status
GET  /jobs/{id}                   status, steps with timings, media facts, artifacts by kind, links to the documents,
                                  while it runs the steps ended and an estimate of the time left (eta.py)
GET  /jobs/{id}/artifacts?kind=    one kind's artifacts (evidence frames...), a page at a time, with links
GET  /jobs/{id}/report            the report page (HTML): player with subtitles, timeline lanes, transcript, evidence
GET  /search?q=&mode=keyword|semantic|hybrid&label=&speaker=&job=   hits across all videos (search.py)
POST /jobs/{id}/runs              run a finished job again: a new execution on the same upload (409 while it runs)
PUT  /jobs/{id}/speakers {names}  name the speakers; a finished job runs again (every step reused) for the exports
POST /jobs/{id}/shares            a read-only link: a random token (192 bits) with an expiry
DELETE /jobs/{id}/shares/{token}  revokes it
GET  /s/{token}                   that one job's report page, read-only (no search, no other videos);
                                  404 for an unknown token, 410 for an expired or revoked one, as a page
GET  /s/{token}/report.json       the same report and presigned links to its files, as JSON
GET  /                            the library page: every video with its poster, search across them
Errors are JSON: {"message": ...}: 404 for an unknown job or route, 405 for a method a route does
not take, 422 naming each bad field. Requests that change anything take application/json only
(415), and not from a page on another origin (403): a browser cannot be made to drive the API.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import html
import json
import re
import secrets
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path as FilePath
from pathlib import PurePosixPath
from typing import Annotated, Literal
from urllib.parse import unquote, urlsplit

import boto3
from aws_lambda_powertools.event_handler import (
    APIGatewayRestResolver,
    Response,
    content_types,
)
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from pydantic import BaseModel

from reelscope import __version__
from reelscope.cloud import eta, jobs
from reelscope.cloud.schemas import (
    ArtifactsPage,
    FetchQueued,
    FetchRecord,
    IngestRequest,
    JobDetail,
    JobsPage,
    RunQueued,
    SearchAnswer,
    ShareCreated,
    SharedReport,
    ShareRequest,
    SpeakerNamesRequest,
    SpeakersNamed,
    UploadForm,
    UploadRequest,
    answer,
)
from reelscope.definition import BY_CREATED_KEY, TABLE_KEY
from reelscope.errors import BadNames, BadQuery, NotFound
from reelscope.search import index as search
from reelscope.settings import Settings
from reelscope.status import FINISHED, JOB_STATUSES, Status
from reelscope.store import Store, shared_store

TOKEN = re.compile(r"[A-Za-z0-9_-]{32}")
LINK_TTL_S = 3600  # presigned links handed out by GET /jobs/{id}, search hits and shares
HEX_ID = r"^[0-9a-f]{32}$"
PAGE_KEY = {*TABLE_KEY, *BY_CREATED_KEY}  # the ByCreated index's last key: what a `next` token holds
JobId = Annotated[str, Path(pattern=HEX_ID, description="a job id: 32 lowercase hexadecimal characters")]
ERROR_BODY = {"application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}}
NOT_FOUND = {404: {"description": "not found", "content": ERROR_BODY}}
GONE = {410: {"description": "the link expired or was revoked", "content": ERROR_BODY}}
# A page route's 404: a page saying so, or {"message"} for a path whose parameter no route takes.
PAGE_NOT_FOUND = {404: {"description": "not found", "content": {"text/html": {}, **ERROR_BODY}}}


def ok(description: str, model: type[BaseModel]) -> dict:
    """A success answer of this model, for the OpenAPI document."""
    return {"description": description, "content": {"application/json": {"model": model}}}


STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}


def _error(status: int, message: str) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body={"message": message})


def refusal(event: dict) -> tuple[int, str] | None:
    """What no route may take, judged before routing. A web page on another site can send a form or
    text/plain POST without asking (a CORS "simple request"): state-changing requests must come as
    application/json (a type a page cannot send cross-origin without a preflight, which this API
    never grants) and not from another origin."""
    method = (event.get("httpMethod") or "").upper()
    if method not in STATE_CHANGING:
        return None
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    origin = headers.get("origin")
    if origin is not None and urlsplit(origin).netloc.lower() != (headers.get("host") or "").lower():
        return 403, f"Origin {origin[:100]}: pages on other origins may not change anything here"
    if headers.get("sec-fetch-site") in ("cross-site", "same-site"):
        return 403, "Sec-Fetch-Site: pages on other sites may not change anything here"
    content_type = headers.get("content-type")
    body = event.get("body")
    if content_type is None and not body:
        return None  # e.g. POST /jobs/{id}/runs, DELETE: nothing to read
    if (content_type or "").split(";")[0].strip().lower() != "application/json":
        return 415, f"Content-Type {(content_type or 'missing')[:100]!r}: this route takes application/json"
    try:
        json.loads(body or "null")
    except RecursionError:  # the resolver's parser would raise it as a server error
        return 422, "body: JSON nested too deeply"
    except ValueError:
        pass  # the resolver names it: "body: JSON decode error"
    return None


# Powertools keeps the request being resolved on its BaseRouter class (BaseRouter.current_event),
# shared by every resolver of the process: a Lambda environment serves one request at a time, local
# mode serves many at once in one process. So one request is resolved at a time.
_resolving = threading.Lock()


def resolve(app: APIGatewayRestResolver, event: dict, context) -> dict:
    """The Lambda proxy answer to one API Gateway event: a refusal, or the route's answer."""
    refused = refusal(event)
    if refused:
        return {"statusCode": refused[0], "headers": {"Content-Type": "application/json"},
                "body": json.dumps({"message": refused[1]}), "isBase64Encoded": False}
    with _resolving:
        return app.resolve(event, context)


@functools.cache
def route_patterns(app: APIGatewayRestResolver) -> list[tuple[re.Pattern, set[str]]]:
    """Each documented path as a pattern, with its methods (for 405 and its Allow header)."""
    paths = json.loads(openapi(app))["paths"]
    return [(re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$"),
             {method.upper() for method in methods}) for path, methods in paths.items()]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def upload_key(file_name: str) -> str:
    """A server-chosen key under uploads/: a random folder, the file's base name made safe."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", PurePosixPath(file_name.replace("\\", "/")).name).strip("._")[:120]
    return f"uploads/{uuid.uuid4().hex}/{safe or 'video'}"


WEB = FilePath(__file__).parents[1] / "web"
HTML = "text/html; charset=utf-8"


# Kinds of which a job has one file per entity, shot or 10 s (thousands for hours of video): the job
# names how many, GET /jobs/{id}/artifacts?kind= lists them page by page.
PAGED_KINDS = ("evidence", "keyframe", "thumbnail", "search-index")


def artifact_links(store: Store, job_id: str, manifest: dict,
                   kinds_left_out: tuple[str, ...] = ("thumbnail", "search-index")) -> dict[str, str]:
    return {a["path"]: store.presigned_get(f"jobs/{job_id}/{a['path']}", LINK_TTL_S)
            for a in manifest["artifacts"] if a["kind"] not in kinds_left_out}


def artifact_kinds(manifest: dict) -> dict[str, dict]:
    kinds: dict[str, dict] = {}
    for artifact in manifest["artifacts"]:
        kind = kinds.setdefault(artifact["kind"], {"count": 0, "size_bytes": 0})
        kind["count"] += 1
        kind["size_bytes"] += artifact["size_bytes"]
    return kinds


def html_page(template: str, title: str, data: dict, status: int = 200) -> Response:
    """One of web/'s pages in the shell they share, its data inlined (no front-end build, no request
    for what the server knows). One pass: a title or data holding a placeholder's name stays text."""
    values = {"PAGE": (WEB / template).read_text(encoding="utf-8"), "TITLE": html.escape(title),
              "DATA": json.dumps(data, sort_keys=True).replace("</", "<\\/")}  # no "</script>" can end the data block
    page = re.sub(r"__(PAGE|TITLE|DATA)__", lambda found: values[found[1]], (WEB / "shell.html").read_text(encoding="utf-8"))
    return Response(status_code=status, content_type=HTML, body=page)


def error_page(status: int, message: str) -> Response:
    """What a browser opening a dead link sees: a page, not a JSON body."""
    return html_page("message.html", message, {"message": message, "status": status}, status)


def report_page(store: Store, job_id: str, report: dict, links: dict[str, str], api_base: str | None) -> Response:
    """The report page. Its subtitles are inlined: a <track> from another origin (S3) needs CORS on
    the bucket and on the video, a track made from inlined text needs nothing. api_base None: a
    share link's page, which reaches this report only (no search, no other videos)."""
    tracks = {name: store.s3.get_object(Bucket=store.bucket, Key=f"jobs/{job_id}/{name}")["Body"].read().decode()
              for name in ("subtitles.vtt", "subtitles.en.vtt") if name in links}
    return html_page("report.html", report["source"]["file_name"],
                     {"report": report, "links": links, "api_base": api_base, "job_id": job_id,
                      "subtitles": tracks.get("subtitles.vtt"), "subtitles_en": tracks.get("subtitles.en.vtt")})


def _field_errors(errors) -> str:
    """'file_name: Field required; content_type: String should match ...' from pydantic's errors."""
    messages = []
    for error in errors:
        where = [str(part) for part in error["loc"][1:] if not isinstance(part, int)] or [str(error["loc"][0])]
        messages.append(f"{'.'.join(where)}: {error['msg']}")
    return "; ".join(messages)


def _page_start(token: str) -> dict | bool:
    """The index key a page token stands for, or False: a token is the index's last key as
    _page_token wrote it, and anything else is refused here, not by DynamoDB (a server error)."""
    try:
        start = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (binascii.Error, ValueError):
        return False
    ok = isinstance(start, dict) and set(start) == PAGE_KEY and all(isinstance(v, str) for v in start.values())
    return start if ok else False


def _page_token(key: dict | None) -> str | None:
    return base64.urlsafe_b64encode(json.dumps(key, sort_keys=True).encode()).decode() if key else None


def _request_scope(router: Router):
    """(settings, store) getters for the request being served: the handler appends the settings."""
    def settings_() -> Settings:
        return router.context["settings"]

    def store_() -> Store:
        return shared_store(settings_().bucket, settings_().table)

    return settings_, store_


SETTLED_ENTRIES = 2048
_settled: OrderedDict[tuple, object] = OrderedDict()
_settled_lock = threading.Lock()


def settled(store: Store, job: dict, part: str, read: Callable[[], object]) -> object:
    """One part of a job (its steps, manifest or report) read once per warm process while the job
    stays finished: nothing changes a finished job but a rerun, which clears finished_at and
    counts a new run. An unfinished job's parts are read every time."""
    if job["status"] not in FINISHED or "finished_at" not in job:
        return read()
    key = (store.bucket, job["job_id"], job.get("run", 1), job["finished_at"], part)
    with _settled_lock:
        if key in _settled:
            return _settled[key]
    value = read()
    with _settled_lock:
        _settled[key] = value
        while len(_settled) > SETTLED_ENTRIES:
            _settled.popitem(last=False)
    return value


def manifest_of(store: Store, job: dict) -> dict | None:
    """The job's manifest, once it has one."""
    return settled(store, job, "manifest", lambda: store.get_json(job["manifest_key"])) if "manifest_key" in job else None


def report_and_links(store: Store, job_id: str) -> tuple[dict, dict] | None:
    job = store.job(job_id)
    manifest = manifest_of(store, job) if job else None
    if manifest is None:
        return None
    report = settled(store, job, "report", lambda: store.get_json(f"jobs/{job_id}/report.json"))
    # The names an analyst gave since the report was made show at once (the exports follow at the next run).
    names = job.get("speaker_names", {})
    report = {**report, "speakers": [{**v, "name": names.get(v["id"], v["id"])} for v in report.get("speakers", [])]}
    return report, artifact_links(store, job_id, manifest)


def _upload_routes(client) -> Router:
    """POST /uploads, POST /ingest, GET /ingest/{id}."""
    router = Router()
    settings_, store_ = _request_scope(router)

    @router.post("/uploads", summary="A presigned POST for uploading a video under uploads/",
              responses={201: ok("url and fields for a multipart/form-data POST to S3", UploadForm)})
    def create_upload(upload: Annotated[UploadRequest, Body()]):
        settings = settings_()
        key = upload_key(upload.file_name)
        post = store_().s3.generate_presigned_post(  # the store's client signs with SigV4
            Bucket=settings.bucket, Key=key, Fields={"Content-Type": upload.content_type},
            Conditions=[["content-length-range", 1, settings.max_bytes], ["eq", "$Content-Type", upload.content_type]],
            ExpiresIn=settings.upload_expiry_s)
        return Response(status_code=201, content_type=content_types.APPLICATION_JSON,
                        body=answer(UploadForm, {"key": key, "url": post["url"], "fields": post["fields"],
                                                 "expires_in": settings.upload_expiry_s, "max_bytes": settings.max_bytes}))

    @router.post("/ingest", summary="Fetch a video from an http(s) URL into uploads/ (which starts a job)",
              responses={202: ok("queued: poll status_path", FetchQueued)})
    def ingest_url(request: Annotated[IngestRequest, Body()]):
        settings = settings_()
        url = request.url.strip()
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - parsed on access: a port out of range raises here
        except ValueError as err:  # "http://[::1/", "http://[zz]/", "http://host:99999/"
            return _error(422, f"url: {err}")
        if not parts.hostname:
            return _error(422, "url: an http or https URL with a host")
        fetch_id = uuid.uuid4().hex
        key = upload_key(unquote(PurePosixPath(parts.path).name) or "video.mp4")
        store_().put_fetch(fetch_id, url, key)
        client("lambda").invoke(FunctionName=settings.fetch_function, InvocationType="Event",
                             Payload=json.dumps({"fetch_id": fetch_id, "url": url, "key": key}).encode())
        return Response(status_code=202, content_type=content_types.APPLICATION_JSON, body=answer(FetchQueued, {
            "fetch_id": fetch_id, "key": key, "status": Status.QUEUED, "status_path": f"/ingest/{fetch_id}"}))

    @router.get("/ingest/<fetch_id>", summary="How a URL fetch went", responses={200: ok("the fetch", FetchRecord), **NOT_FOUND})
    def ingest_status(fetch_id: Annotated[str, Path(pattern=HEX_ID)]):
        record = store_().fetch_record(fetch_id)
        if record is None:
            return _error(404, f"fetch {fetch_id} not found")
        return answer(FetchRecord, {k: v for k, v in record.items() if k not in ("PK", "SK", "ttl")})

    return router


def _search_routes() -> Router:
    """GET /search."""
    router = Router()
    _, store_ = _request_scope(router)

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
            return _error(422, f"q: {err}")
        for hit in hits:  # a picture of the moment: an entity range's evidence frame, a segment's thumbnail
            for field in ("evidence", "thumbnail"):
                if hit.get(field):
                    hit[f"{field}_url"] = store.presigned_get(f"jobs/{hit['job_id']}/{hit[field]}", LINK_TTL_S)
        return answer(SearchAnswer, {"query": q.strip(), "mode": mode, "hits": hits, "links_expire_in": LINK_TTL_S})

    return router


def _job_changes(client) -> Router:
    """POST /jobs/{id}/runs, PUT /jobs/{id}/speakers: what an analyst changes of a job."""
    router = Router()
    settings_, store_ = _request_scope(router)

    @router.post("/jobs/<job_id>/runs", summary="Run a finished job again (a new execution on the same upload)",
              responses={202: ok("queued: follow GET /jobs/{id}", RunQueued), **NOT_FOUND,
                         409: {"description": "the job is queued or running", "content": ERROR_BODY}})
    def run_again(job_id: JobId):
        try:
            run = jobs.rerun(job_id, settings_(), client("stepfunctions"), store_())
        except NotFound as err:
            return _error(404, str(err))
        except jobs.JobBusy as err:
            return _error(409, str(err))
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
            return _error(404, str(err))
        except BadNames as err:
            return _error(422, f"names: {err}")
        return answer(SpeakersNamed, named)

    return router


def _job_routes() -> Router:
    """GET /jobs, GET /jobs/{id}, GET /jobs/{id}/artifacts."""
    router = Router()
    _, store_ = _request_scope(router)

    @router.get("/jobs", summary="Jobs, newest first", responses={200: ok("one page of jobs", JobsPage)})
    def list_jobs(status: Annotated[Literal[JOB_STATUSES] | None, Query()] = None,
                  limit: Annotated[int, Query(ge=1, le=100)] = 20,
                  page: Annotated[str | None, Query(alias="next", max_length=2000,
                                                    description="`next` of the previous page")] = None):
        start = _page_start(page) if page is not None else None
        if start is False:
            return _error(422, "next: not a page token from this API")
        store = store_()
        jobs, last = store.list_jobs(limit, status=status, start=start)
        listed = [{"job_id": job["job_id"], "status": job["status"], "file_name": job.get("source_file_name"),
                   "created_at": job["created_at"], "finished_at": job.get("finished_at"),
                   "duration_s": job.get("media", {}).get("duration_s"),
                   "report_path": f"/jobs/{job['job_id']}/report" if "manifest_key" in job else None,
                   "poster_url": store.presigned_get(job["poster_key"], LINK_TTL_S) if "poster_key" in job else None,
                   "error": job.get("error"), "speakers": job.get("speakers", [])}
                  for job in jobs]
        return answer(JobsPage, {"jobs": listed, "next": _page_token(last), "links_expire_in": LINK_TTL_S})

    @router.get("/jobs/<job_id>", summary="A job: status, steps with timings, media facts, links to its artifacts",
             responses={200: ok("the job", JobDetail), **NOT_FOUND})
    def get_job(job_id: JobId):
        store = store_()
        job = store.job(job_id)
        if job is None:
            return _error(404, f"job {job_id} not found")
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
            return _error(404, f"job {job_id} has no artifacts yet")
        start = int(page or 0)
        of_kind = [a for a in manifest["artifacts"] if a["kind"] == kind]
        shown = [{**a, "url": store.presigned_get(f"jobs/{job_id}/{a['path']}", LINK_TTL_S)}
                 for a in of_kind[start: start + limit]]
        following = str(start + limit) if start + limit < len(of_kind) else None
        return answer(ArtifactsPage, {"artifacts": shown, "next": following, "links_expire_in": LINK_TTL_S})

    return router


def _page_routes() -> Router:
    """GET / (the library) and GET /jobs/{id}/report: the analyst's pages."""
    router = Router()
    _, store_ = _request_scope(router)

    def stage_prefix() -> str:
        """"/v1" behind API Gateway, "" locally: what the page's own links and calls start with."""
        full_path = router.current_event.request_context.path or router.current_event.path
        return full_path[: len(full_path) - len(router.current_event.path)]

    @router.get("/jobs/<job_id>/report", summary="A job's report page (HTML)",
             responses={200: {"description": "the page", "content": {"text/html": {}}}, **PAGE_NOT_FOUND})
    def job_page(job_id: JobId):
        store = store_()
        found = report_and_links(store, job_id)
        if found is None:
            return error_page(404, f"job {job_id} has no report")
        return report_page(store, job_id, *found, api_base=stage_prefix())

    @router.get("/", summary="Where an analyst starts: the library page, every video and search across them",
             responses={200: {"description": "the page", "content": {"text/html": {}}}})
    def library():
        return html_page("library.html", "library", {"api_base": stage_prefix()})

    return router


def _share_routes() -> Router:
    """Share links: POST and DELETE /jobs/{id}/shares, GET /s/{token} and its page."""
    router = Router()
    settings_, store_ = _request_scope(router)

    @router.post("/jobs/<job_id>/shares", summary="A read-only share link to one job's report",
              responses={201: ok("the token (shown once) and its path", ShareCreated), **NOT_FOUND})
    def create_share(job_id: JobId, request: Annotated[ShareRequest | None, Body()] = None):
        settings, store = settings_(), store_()
        if store.job(job_id) is None:
            return _error(404, f"job {job_id} not found")
        lifetime = request.expires_in_s if request and request.expires_in_s is not None else settings.share_default_s
        if lifetime > settings.share_max_s:
            return _error(422, f"expires_in_s: at most {settings.share_max_s}")
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
            return _error(404, "share link not found")
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
            return _error(*found)
        return answer(SharedReport, {"report": found[1], "links": found[2], "links_expire_in": LINK_TTL_S})

    return router


def build_app() -> APIGatewayRestResolver:
    """The resolver with every route. Each call builds its own routers: one resolver per Lambda
    handler copy, none sharing another's (local mode loads several)."""
    app = APIGatewayRestResolver(enable_validation=True)
    client = functools.cache(boto3.client)  # made at first use: `reelscope openapi` needs no AWS region

    @app.exception_handler(RequestValidationError)
    def invalid_request(err: RequestValidationError):
        return _error(422, _field_errors(err.errors()))

    @app.not_found
    def unknown_route(_):
        method, path = app.current_event.http_method.upper(), app.current_event.path
        allowed = set().union(*(methods for pattern, methods in route_patterns(app) if pattern.match(path)))
        if method in allowed:  # a documented route whose parameter no route takes ("/jobs/%C2%84")
            return _error(404, f"{method} {path[:200]}: no such resource")
        if allowed:
            return Response(status_code=405, content_type=content_types.APPLICATION_JSON,
                            headers={"Allow": ", ".join(sorted(allowed))},
                            body={"message": f"{method} {path[:200]}: this route takes {', '.join(sorted(allowed))}"})
        return _error(404, f"{method} {path[:200]}: no such route")

    @app.get("/openapi.json", summary="This API's OpenAPI document")
    def openapi_document():
        return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=openapi(app))

    app.include_router(_upload_routes(client))
    app.include_router(_search_routes())
    app.include_router(_job_routes())
    app.include_router(_job_changes(client))
    app.include_router(_page_routes())
    app.include_router(_share_routes())
    return app


def openapi(app: APIGatewayRestResolver) -> str:
    """The OpenAPI document of the routes above, as the resolver derives it from their types. Our
    422 body is {"message": ...} (invalid_request), not the resolver's default: the schema says so."""
    document = json.loads(app.get_openapi_json_schema(
        title="reelscope", version=__version__,
        description="Video intelligence: uploads, jobs, search across videos, reports and share links. "
                    "Behind API Gateway every route but the share link's (/s/{token}, its report.json) needs IAM (SigV4) "
                    "credentials. "
                    "Errors are {\"message\": ...}: 404 unknown, 410 expired or revoked, 422 naming each bad field."))
    for operation in (op for methods in document["paths"].values() for op in methods.values()):
        operation["responses"].get("204", {}).pop("content", None)  # "no content": no body to describe
    schemas = document["components"]["schemas"]
    schemas.pop("ValidationError", None)
    schemas["HTTPValidationError"] = {
        "title": "Error", "type": "object", "required": ["message"],
        "properties": {"message": {"type": "string", "examples": ["q: Field required; mode: Input should be "
                                                                   "'keyword', 'semantic' or 'hybrid'"]}}}
    return json.dumps(document, indent=2)
