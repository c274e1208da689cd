"""The REST API behind API Gateway (one Lambda, Powertools REST resolver).

POST /uploads      a presigned POST: the browser uploads straight to S3 under uploads/
GET  /jobs/{id}    the job item and its step items
GET  /search?q=&mode=keyword&label=&job=   hits across all videos (search.py)
POST /jobs/{id}/shares            a read-only link: a random token (192 bits) with an expiry
DELETE /jobs/{id}/shares/{token}  revokes it
POST /ingest {url}                fetch a video from a URL into uploads/ (checked against SSRF, fetch.py);
                                  202 with a fetch id; the fetch runs in the fetch function
GET  /ingest/{id}                 QUEUED, SUCCEEDED (the upload then starts a job) or FAILED with the reason
GET  /s/{token}                   that one job's report and presigned links to its files, read-only;
                                  404 for an unknown token, 410 for an expired or revoked one
GET  /jobs/{id}/report            the report page (HTML): player, timeline lanes, transcript, evidence, search
GET  /s/{token}/report            the same page, read-only, without search
Errors are JSON: {"message": ...} with 404 for an unknown job and 422 naming the bad field.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import secrets
import time
import uuid
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

import boto3
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types

from . import search
from .settings import Settings
from .store import Store

JOB_ID = re.compile(r"[0-9a-f]{32}")
TOKEN = re.compile(r"[A-Za-z0-9_-]{32}")
LINK_TTL_S = 3600  # presigned links handed out through a share


def _error(status: int, message: str) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body={"message": message})


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def upload_key(file_name: str) -> str:
    """A server-chosen key under uploads/: a random folder, the file's base name made safe."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", PurePosixPath(file_name.replace("\\", "/")).name).strip("._")[:120]
    return f"uploads/{uuid.uuid4().hex}/{safe or 'video'}"


PAGE = Path(__file__).parent / "web" / "report.html"


def artifact_links(store: Store, job_id: str, manifest: dict) -> dict[str, str]:
    return {a["path"]: store.presigned_get(f"jobs/{job_id}/{a['path']}", LINK_TTL_S)
            for a in manifest["artifacts"] if a["kind"] != "thumbnail"}


def render_page(report: dict, links: dict[str, str], api_base: str | None) -> Response:
    """The report page: one HTML file, its data inlined (no front-end build, no second request).
    api_base None hides the search box (share links reach one report only)."""
    data = json.dumps({"report": report, "links": links, "api_base": api_base}, sort_keys=True)
    page = (PAGE.read_text(encoding="utf-8").replace("__TITLE__", html.escape(report["source"]["file_name"]))
            .replace("__DATA__", data.replace("</", "<\\/")))  # no "</script>" can end the data block
    return Response(status_code=200, content_type="text/html; charset=utf-8", body=page)


def build_app() -> APIGatewayRestResolver:
    app = APIGatewayRestResolver()
    s3, lambda_client = boto3.client("s3"), boto3.client("lambda")

    def settings_() -> Settings:
        return app.context["settings"]  # appended by the handler for each request

    def store_() -> Store:
        return Store(settings_().bucket, settings_().table)

    @app.post("/uploads")
    def create_upload():
        settings = settings_()
        body = app.current_event.json_body or {}
        file_name, content_type = body.get("file_name"), body.get("content_type", "video/mp4")
        if not isinstance(file_name, str) or not file_name.strip():
            return _error(422, "file_name: required, a non-empty string")
        if not isinstance(content_type, str) or not content_type.startswith("video/"):
            return _error(422, f"content_type: must start with video/, got {content_type!r}")
        key = upload_key(file_name)
        post = s3.generate_presigned_post(
            Bucket=settings.bucket, Key=key, Fields={"Content-Type": content_type},
            Conditions=[["content-length-range", 1, settings.max_bytes], ["eq", "$Content-Type", content_type]],
            ExpiresIn=settings.upload_expiry_s)
        return Response(status_code=201, content_type=content_types.APPLICATION_JSON,
                        body={"key": key, "url": post["url"], "fields": post["fields"],
                              "expires_in": settings.upload_expiry_s, "max_bytes": settings.max_bytes})

    @app.get("/search")
    def search_videos():
        params = app.current_event.query_string_parameters or {}
        query, mode = (params.get("q") or "").strip(), params.get("mode", "keyword")
        if not query:
            return _error(422, "q: required, the words to search for")
        if mode != "keyword":
            return _error(422, f"mode: {mode!r} is not available; use keyword")
        if params.get("job") and not JOB_ID.fullmatch(params["job"]):
            return _error(422, "job: 32 lowercase hexadecimal characters")
        try:
            hits = search.keyword_search(store_(), query, job=params.get("job"),
                                         label=params.get("label"))
        except ValueError as err:
            return _error(422, f"q: {err}")
        return {"query": query, "mode": mode, "hits": hits}

    @app.post("/ingest")
    def ingest_url():
        settings = settings_()
        url = (app.current_event.json_body or {}).get("url")
        if not isinstance(url, str) or len(url) > 2048:
            return _error(422, "url: required, a string of at most 2048 characters")
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return _error(422, "url: an http or https URL with a host")
        fetch_id = uuid.uuid4().hex
        key = upload_key(unquote(PurePosixPath(parts.path).name) or "video.mp4")
        store_().put_fetch(fetch_id, url.strip(), key)
        lambda_client.invoke(FunctionName=settings.fetch_function, InvocationType="Event",
                             Payload=json.dumps({"fetch_id": fetch_id, "url": url.strip(), "key": key}).encode())
        return Response(status_code=202, content_type=content_types.APPLICATION_JSON,
                        body={"fetch_id": fetch_id, "key": key, "status": "QUEUED", "status_path": f"/ingest/{fetch_id}"})

    @app.get("/ingest/<fetch_id>")
    def ingest_status(fetch_id: str):
        record = store_().fetch_record(fetch_id) if JOB_ID.fullmatch(fetch_id) else None
        if record is None:
            return _error(404, f"fetch {fetch_id} not found")
        return {k: v for k, v in record.items() if k not in ("PK", "SK", "ttl")}

    @app.post("/jobs/<job_id>/shares")
    def create_share(job_id: str):
        settings, store = settings_(), store_()
        if not JOB_ID.fullmatch(job_id) or store.job(job_id) is None:
            return _error(404, f"job {job_id} not found")
        lifetime = (app.current_event.json_body or {}).get("expires_in_s", settings.share_default_s)
        if not isinstance(lifetime, int) or not 60 <= lifetime <= settings.share_max_s:
            return _error(422, f"expires_in_s: an integer from 60 to {settings.share_max_s}")
        token = secrets.token_urlsafe(24)  # 192 bits, 32 characters
        expires_at = int(time.time()) + lifetime
        store.put_share(token_hash(token), job_id, expires_at)
        return Response(status_code=201, content_type=content_types.APPLICATION_JSON,
                        body={"token": token, "path": f"/s/{token}", "job_id": job_id, "expires_at": expires_at})

    @app.delete("/jobs/<job_id>/shares/<token>")
    def revoke_share(job_id: str, token: str):
        store = store_()
        share = store.share(token_hash(token)) if TOKEN.fullmatch(token) else None
        if share is None or share["job_id"] != job_id:
            return _error(404, "share link not found")
        store.revoke_share(token_hash(token))
        return Response(status_code=204, content_type=content_types.APPLICATION_JSON, body="")

    def report_and_links(store: Store, job_id: str) -> tuple[dict, dict] | Response:
        job = store.job(job_id)
        if job is None or "manifest_key" not in job:
            return _error(404, f"job {job_id} has no report")
        return store.get_json(f"jobs/{job_id}/report.json"), artifact_links(store, job_id, store.get_json(job["manifest_key"]))

    def shared(token: str) -> tuple[dict, dict] | Response:
        store = store_()
        share = store.share(token_hash(token)) if TOKEN.fullmatch(token) else None
        if share is None:
            return _error(404, "share link not found")
        if share["revoked"] or share["expires_at"] <= time.time():
            return _error(410, "share link " + ("revoked" if share["revoked"] else "expired"))
        return report_and_links(store, share["job_id"])

    @app.get("/s/<token>")
    def shared_report(token: str):
        found = shared(token)
        if isinstance(found, Response):
            return found
        return {"report": found[0], "links": found[1], "links_expire_in": LINK_TTL_S}

    @app.get("/s/<token>/report")
    def shared_page(token: str):
        found = shared(token)
        return found if isinstance(found, Response) else render_page(*found, api_base=None)

    @app.get("/jobs/<job_id>/report")
    def job_page(job_id: str):
        if not JOB_ID.fullmatch(job_id):
            return _error(422, "job_id: 32 lowercase hexadecimal characters")
        found = report_and_links(store_(), job_id)
        if isinstance(found, Response):
            return found
        # The stage prefix ("/v1" behind API Gateway, "" locally) for the page's own API calls.
        full_path = app.current_event.request_context.path or app.current_event.path
        return render_page(*found, api_base=full_path[: len(full_path) - len(app.current_event.path)])

    @app.get("/jobs/<job_id>")
    def get_job(job_id: str):
        if not JOB_ID.fullmatch(job_id):
            return _error(422, "job_id: 32 lowercase hexadecimal characters")
        store = store_()
        job = store.job(job_id)
        if job is None:
            return _error(404, f"job {job_id} not found")
        hidden = {"PK", "SK"}
        return {"job": {k: v for k, v in job.items() if k not in hidden},
                "steps": {name: {k: v for k, v in step.items() if k not in hidden | {"job_id"}}
                          for name, step in store.steps(job_id).items()}}

    return app
