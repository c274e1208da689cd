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
from urllib.parse import urlsplit

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
from reelscope.cloud.responses import (
    error,
)
from reelscope.cloud.routes import jobs as job_routes
from reelscope.cloud.routes import pages, shares, uploads
from reelscope.cloud.routes import search as search_routes

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
    app.include_router(pages.router())
    app.include_router(shares.router())
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
