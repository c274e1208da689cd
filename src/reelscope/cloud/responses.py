"""What the API's routes share: answers and errors, links, the pages, page tokens, the request's
settings and store, and the parts of finished jobs read once per warm process."""

from __future__ import annotations

import base64
import binascii
import hashlib
import html
import json
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path as FilePath
from pathlib import PurePosixPath
from typing import Annotated

from aws_lambda_powertools.event_handler import (
    Response,
    content_types,
)
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path
from pydantic import BaseModel

from reelscope.access.roles import DEFAULT_CASE, WRITE, Caller
from reelscope.analysis import reports
from reelscope.definition import BY_CASE_KEY, BY_CREATED_KEY, TABLE_KEY
from reelscope.settings import Settings
from reelscope.status import FINISHED
from reelscope.store import Store, shared_store

TOKEN = re.compile(r"[A-Za-z0-9_-]{32}")
LINK_TTL_S = 3600  # presigned links handed out by GET /jobs/{id}, search hits and shares
HEX_ID = r"^[0-9a-f]{32}$"
PAGE_KEY = {*TABLE_KEY, *BY_CREATED_KEY}  # the ByCreated index's last key: what a `next` token holds
CASE_PAGE_KEY = {*TABLE_KEY, *BY_CASE_KEY}  # ... or, for a caller of some cases, each case's ByCase key
JobId = Annotated[str, Path(pattern=HEX_ID, description="a job id: 32 lowercase hexadecimal characters")]
ERROR_BODY = {"application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}}
NOT_FOUND = {404: {"description": "not found", "content": ERROR_BODY}}
GONE = {410: {"description": "the link expired or was revoked", "content": ERROR_BODY}}
# A page route's 404: a page saying so, or {"message"} for a path whose parameter no route takes.
PAGE_NOT_FOUND = {404: {"description": "not found", "content": {"text/html": {}, **ERROR_BODY}}}


def ok(description: str, model: type[BaseModel]) -> dict:
    """A success answer of this model, for the OpenAPI document."""
    return {"description": description, "content": {"application/json": {"model": model}}}


def error(status: int, message: str) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body={"message": message})


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def upload_key(file_name: str, case: str) -> str:
    """A server-chosen key under uploads/CASE/: a random folder, the file's base name made safe."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", PurePosixPath(file_name.replace("\\", "/")).name).strip("._")[:120]
    return f"uploads/{case}/{uuid.uuid4().hex}/{safe or 'video'}"


def case_for(caller: Caller, asked: str | None) -> str | Response:
    """The case a new video goes into: the one asked for, if the caller works in it; else the
    caller's only case (an admin's: the default case). An error answer otherwise."""
    if asked is not None:
        return asked if caller.may(WRITE, asked) else error(
            403, f"{caller.user} ({caller.role}) may not add videos to case {asked}")
    if caller.role == "admin":
        return DEFAULT_CASE
    if len(caller.cases) == 1:
        return next(iter(caller.cases))
    return error(422, f"case: Field required: {caller.user} works in {', '.join(sorted(caller.cases)) or 'no case'}")


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


def page_start(token: str) -> dict | bool:
    """The index key a page token stands for, or False: a token is the index's last key (or each
    case's) as page_token wrote it, and anything else is refused here, not by DynamoDB (a server error)."""
    def key_of(value, names: set[str]) -> bool:
        return isinstance(value, dict) and set(value) == names and all(isinstance(v, str) for v in value.values())

    try:
        start = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (binascii.Error, ValueError):
        return False
    by_case = start.get("by_case") if isinstance(start, dict) and set(start) == {"by_case"} else None
    ok = key_of(start, PAGE_KEY) or (isinstance(by_case, dict) and all(
        isinstance(case, str) and (value == "done" or key_of(value, CASE_PAGE_KEY)) for case, value in by_case.items()))
    return start if ok else False


def page_token(key: dict | None) -> str | None:
    return base64.urlsafe_b64encode(json.dumps(key, sort_keys=True).encode()).decode() if key else None


def trail_start(token: str) -> dict | None:
    """The audit table's key a trail's `next` stands for, or None when it is not one."""
    try:
        start = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (binascii.Error, ValueError):
        return None
    ok = isinstance(start, dict) and set(start) == {"trail", "at"} and all(isinstance(v, str) for v in start.values())
    return start if ok else None


def stage_prefix(event: dict) -> str:
    """"/v1" behind API Gateway, "" locally: what links to this API's own routes start with."""
    full_path = (event.get("requestContext") or {}).get("path") or event.get("path") or ""
    return full_path[: len(full_path) - len(event.get("path") or "")]


def request_scope(router: Router):
    """(settings, store) getters for the request being served: the handler appends the settings."""
    def settings_() -> Settings:
        return router.context["settings"]

    def store_() -> Store:
        return shared_store(settings_().bucket, settings_().table)

    return settings_, store_


def caller_scope(router: Router):
    """The caller of the request being served (cloud/api.py admitted them), or None on an open route."""
    def caller_() -> Caller | None:
        return router.context.get("caller")

    return caller_


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
    report = {**report, "speakers": reports.named(report.get("speakers", []), job.get("speaker_names", {}))}
    return report, artifact_links(store, job_id, manifest)
