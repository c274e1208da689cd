"""The REST API behind API Gateway: one Lambda, the Powertools REST resolver with validation. This
module assembles the routers (cloud/routes/: one per resource, sharing cloud/responses.py) and
refuses what no route may take.
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

import functools
import json
import re
import threading
from urllib.parse import quote, urlsplit

import boto3
from aws_lambda_powertools.event_handler import (
    APIGatewayRestResolver,
    Response,
    content_types,
)
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestValidationError,
)

from reelscope import __version__
from reelscope.access import audit
from reelscope.access.roles import OPEN, PAGES, READ, Caller, caller_of, case_of, route_of
from reelscope.cloud.responses import (
    error,
    stage_prefix,
    token_hash,
)
from reelscope.cloud.routes import jobs as job_routes
from reelscope.cloud.routes import pages, people, shares, uploads
from reelscope.cloud.routes import search as search_routes
from reelscope.settings import Settings
from reelscope.store import shared_store

STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}


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

# What the audit trail records of a request that succeeded (sign-in and sign-out record themselves).
AUDITED = {("POST", "/uploads"): "upload", ("POST", "/ingest"): "upload-url", ("GET", "/search"): "search",
           ("GET", "/jobs/{job_id}/report"): "report-view", ("GET", "/jobs/{job_id}/exports/{name}"): "export-download",
           ("POST", "/jobs/{job_id}/shares"): "share-create", ("DELETE", "/jobs/{job_id}/shares/{token}"): "share-revoke",
           ("PUT", "/jobs/{job_id}/speakers"): "speakers-name", ("POST", "/jobs/{job_id}/runs"): "rerun",
           ("DELETE", "/jobs/{job_id}"): "delete", ("PUT", "/cases/{case}"): "case-hold"}
SECRET_FIELDS = ("token", "password")  # never in a record
ANSWER_FIELDS = ("key", "case", "expires_at", "run", "objects_deleted", "items_deleted", "held")  # what an answer adds


def _json(status: int, message: str, headers: dict | None = None) -> dict:
    return {"statusCode": status, "headers": {"Content-Type": "application/json", **(headers or {})},
            "body": json.dumps({"message": message}), "isBase64Encoded": False}


def admission(event: dict, route: tuple[str, str, dict], caller: Caller | None, job: dict | None) -> dict | None:
    """A refusal of this caller on this route (access/roles.py), or None. A job of a case the caller
    may not read is not found; one they read but may not change is forbidden."""
    method = event["httpMethod"].upper()
    template, need, params = route
    if need == OPEN:
        return None
    if caller is None:
        if (method, template) in PAGES:
            target = stage_prefix(event) + event["path"]
            return {"statusCode": 302, "body": "", "isBase64Encoded": False,
                    "headers": {"Location": f"{stage_prefix(event)}/auth/login?next={quote(target)}",
                                "Content-Type": "text/html; charset=utf-8"}}
        return _json(401, "sign in: this route needs a session cookie or a bearer token", {"WWW-Authenticate": "Bearer"})
    if job is not None and not caller.may(READ, case_of(job)):
        return _json(404, f"job {params['job_id']} not found")
    if not caller.may(need, case_of(job) if job else None):
        where = f" in case {case_of(job)}" if job else ""
        return _json(403, f"{caller.user} ({caller.role}) may not {method} {template}{where}")
    return None


def _audit(event: dict, route: tuple[str, str, dict], caller: Caller, answer: dict, job: dict | None,
           settings: Settings) -> None:
    template, _, params = route
    action = AUDITED.get((event["httpMethod"].upper(), template))
    if action is None or answer["statusCode"] >= 400:
        return
    detail = {k: v for k, v in params.items() if k not in ("job_id", "token")}
    if "token" in params:
        detail["share"] = token_hash(params["token"])[:16]  # the link's id, never the token
    if event.get("queryStringParameters"):
        detail["query"] = event["queryStringParameters"]
    for source, kept in ((event.get("body"), None), (answer.get("body"), ANSWER_FIELDS)):
        try:
            values = json.loads(source) if source else {}
        except ValueError:
            continue
        if isinstance(values, dict):
            detail.update({k: v for k, v in values.items() if (kept is None or k in kept) and k not in SECRET_FIELDS
                           and (not isinstance(v, (dict, list)) or k == "names")})
    audit.record(settings, action, caller, job_id=params.get("job_id"), case=case_of(job) if job else detail.get("case"),
                 detail=detail)


def resolve(app: APIGatewayRestResolver, event: dict, context, settings: Settings) -> dict:
    """The Lambda proxy answer to one API Gateway event: a refusal, or the route's answer."""
    refused = refusal(event)
    if refused:
        return _json(*refused)
    route = route_of(event.get("httpMethod") or "", event.get("path") or "")
    caller = caller_of(event)
    # the job a route is about, read once: its case decides admission and goes into the trail
    # (read before the route runs: a deleted job's record still names its case)
    job = shared_store(settings.bucket, settings.table).job(route[2]["job_id"]) \
        if route and caller and route[1] != OPEN and "job_id" in route[2] else None
    if route and (denied := admission(event, route, caller, job)):
        return denied
    with _resolving:
        app.append_context(settings=settings, caller=caller)
        answer = app.resolve(event, context)
    if route and caller:
        _audit(event, route, caller, answer, job, settings)
    return answer


@functools.cache
def route_patterns(app: APIGatewayRestResolver) -> list[tuple[re.Pattern, set[str]]]:
    """Each documented path as a pattern, with its methods (for 405 and its Allow header)."""
    paths = json.loads(openapi(app))["paths"]
    return [(re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$"),
             {method.upper() for method in methods}) for path, methods in paths.items()]


def _field_errors(errors) -> str:
    """'file_name: Field required; content_type: String should match ...' from pydantic's errors."""
    messages = []
    for problem in errors:
        where = [str(part) for part in problem["loc"][1:] if not isinstance(part, int)] or [str(problem["loc"][0])]
        messages.append(f"{'.'.join(where)}: {problem['msg']}")
    return "; ".join(messages)


def build_app() -> APIGatewayRestResolver:
    """The resolver with every route. Each call builds its own routers: one resolver per Lambda
    handler copy, none sharing another's (local mode loads several)."""
    app = APIGatewayRestResolver(enable_validation=True)
    client = functools.cache(boto3.client)  # made at first use: `reelscope openapi` needs no AWS region

    @app.exception_handler(RequestValidationError)
    def invalid_request(err: RequestValidationError):
        return error(422, _field_errors(err.errors()))

    @app.not_found
    def unknown_route(_):
        method, path = app.current_event.http_method.upper(), app.current_event.path
        allowed = set().union(*(methods for pattern, methods in route_patterns(app) if pattern.match(path)))
        if method in allowed:  # a documented route whose parameter no route takes ("/jobs/%C2%84")
            return error(404, f"{method} {path[:200]}: no such resource")
        if allowed:
            return Response(status_code=405, content_type=content_types.APPLICATION_JSON,
                            headers={"Allow": ", ".join(sorted(allowed))},
                            body={"message": f"{method} {path[:200]}: this route takes {', '.join(sorted(allowed))}"})
        return error(404, f"{method} {path[:200]}: no such route")

    @app.get("/openapi.json", summary="This API's OpenAPI document")
    def openapi_document():
        return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=openapi(app))

    app.include_router(uploads.router(client))
    app.include_router(search_routes.router())
    app.include_router(job_routes.router())
    app.include_router(job_routes.changes(client))
    app.include_router(job_routes.records())
    app.include_router(pages.router())
    app.include_router(shares.router())
    app.include_router(people.sign_in_router())
    app.include_router(people.router())
    return app


def openapi(app: APIGatewayRestResolver) -> str:
    """The OpenAPI document of the routes above, as the resolver derives it from their types. Our
    422 body is {"message": ...} (invalid_request), not the resolver's default: the schema says so."""
    document = json.loads(app.get_openapi_json_schema(
        title="reelscope", version=__version__,
        description="Video intelligence: uploads, jobs, search across videos, reports and share links. "
                    "Every route but the share link's (/s/{token}, its report.json) and signing in (/auth/*) needs a "
                    "user's credential: a bearer token (Authorization: Bearer ...; a user pool access token in AWS, the "
                    "token POST /auth/login answers in local mode) or the session cookie; roles and cases decide the "
                    "rest (docs/SECURITY.md). "
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
