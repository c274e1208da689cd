"""Local mode's two HTTP doors, guarded as their AWS counterparts are.

The API: functions/api/app.py behind waitress on 127.0.0.1 (or the address `serve --bind` names),
as API Gateway puts it in AWS: each request becomes a REST API event, the authorizer
(functions/authorizer) says who sends it, and the api function's answer is the HTTP response. waitress (a well-kept pure-Python
WSGI server, no C parts) does what http.server could not: it buffers each request before a worker
thread sees it (a slow or half-open client holds no thread), closes idle connections, caps the
body (413) and the headers (431), answers bad framing with 400, and does not log a client hanging up.

The S3 endpoint: moto answers every request it gets, unsigned ones included, with permissive CORS.
The gate in front of it answers only this machine's names (a page rebound by DNS to 127.0.0.1
gets 421), refuses requests a web page on another origin makes (403), and checks a presigned POST
upload against its policy as S3 does (signature, expiry, every condition), so that an upload that
passes locally also passes in AWS.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import http
import io
import json
import logging
import tempfile
import threading
import urllib.parse
import uuid
from xml.sax.saxutils import escape

from waitress import wasyncore
from waitress.server import create_server
from werkzeug.formparser import parse_form_data

from reelscope.errors import ReelscopeError
from reelscope.local import calls, moto_patches
from reelscope.local.names import ACCESS_KEY, ACCOUNT, REGION

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
LOOPBACK_ADDRESSES = ("127.0.0.1", "::1", "localhost")
MAX_API_BODY = 1 << 20  # the API takes small JSON bodies; API Gateway's own cap is 10 MB
CHANNEL_TIMEOUT_S = 30  # an idle or half-open connection is closed after this long


def own_hosts(port: int) -> set[str]:
    return {f"{name}:{port}" for name in LOOPBACK_NAMES}


def _header_name(environ_key: str) -> str:
    return "-".join(part.capitalize() for part in environ_key.removeprefix("HTTP_").split("_"))


def _respond(start_response, status: int, body: bytes, headers: list[tuple[str, str]]):
    start_response(f"{status} {http.HTTPStatus(status).phrase}", [*headers, ("Content-Length", str(len(body)))])
    return [body]


def _json(start_response, status: int, message: str):
    return _respond(start_response, status, json.dumps({"message": message}).encode(),
                    [("Content-Type", "application/json")])


def through_gateway(runner, event: dict) -> dict:
    """What API Gateway does with a request: the authorizer first, its caller into the event's
    requestContext.authorizer (401 when it refuses), then the api function's answer."""
    method, path = event["httpMethod"], event["path"]
    authorized, error = runner.invoke("authorizer", {
        "type": "REQUEST", "methodArn": f"arn:aws:execute-api:{REGION}:{ACCOUNT}:local/local/{method}{path}",
        **{k: event.get(k) for k in ("httpMethod", "path", "resource", "headers", "queryStringParameters",
                                     "pathParameters", "requestContext")}})
    if error:
        return _gateway_error(401 if error["errorMessage"] == "Unauthorized" else 500)
    context = {**authorized["context"], "principalId": authorized["principalId"]} if authorized["context"] else {}
    event = {**event, "requestContext": {**event["requestContext"], "authorizer": context}}
    result, error = runner.invoke("api", event)
    return _gateway_error(500) if error else result


def _gateway_error(status: int) -> dict:
    """API Gateway's own answers: 401 when the authorizer refuses, 500 when a function fails."""
    message = "Unauthorized" if status == 401 else "internal error"
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps({"message": message})}


class ApiServer:
    """The API handler behind waitress (see the module doc). On loopback it answers as this
    machine's own names only (DNS rebinding); bound beyond it, local mode has users, every request
    but a share link's needs a session, and any name reaching it is answered."""

    def __init__(self, runner, port: int = 0, bind: str = "127.0.0.1", public_host: str = "127.0.0.1"):
        self.runner = runner
        try:
            self.server = create_server(self._app, host=bind, port=port, threads=8, ident=None,
                                        channel_timeout=CHANNEL_TIMEOUT_S, max_request_body_size=MAX_API_BODY,
                                        max_request_header_size=64 * 1024, connection_limit=256, backlog=128,
                                        clear_untrusted_proxy_headers=True, expose_tracebacks=False)
        except OSError as err:
            raise ReelscopeError(f"API port {port} on {bind}: {err.strerror}; choose another with --api-port") from None
        self.port = int(self.server.effective_port)
        self.url = f"http://{public_host}:{self.port}"
        self.hosts = own_hosts(self.port) if bind in LOOPBACK_ADDRESSES else None
        self._thread = threading.Thread(target=self.server.run, daemon=True)
        # "Task queue depth is N" for every request that waits for one of the 8 threads: a busy
        # moment, not a fault, and it would bury what serve prints.
        logging.getLogger("waitress.queue").setLevel(logging.ERROR)

    def _app(self, environ, start_response):
        host = environ.get("HTTP_HOST", "")
        if self.hosts is not None and host not in self.hosts:  # DNS rebinding: a page on another name, resolved here
            return _json(start_response, 421, f"Host {host[:100]!r}: this server answers as {self.url} only")
        length = int(environ.get("CONTENT_LENGTH") or 0)  # waitress has checked the framing and the cap
        raw = environ["wsgi.input"].read(length) if length else b""
        try:
            body = raw.decode("utf-8") if raw else None
        except UnicodeDecodeError:
            return _json(start_response, 422, "body: not UTF-8 text")  # as the API answers any body it cannot read
        # WSGI hands the path over as latin-1 characters of the percent-decoded bytes.
        path = environ.get("PATH_INFO", "/").encode("latin-1").decode("utf-8", "replace") or "/"
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(environ.get("QUERY_STRING", "")).items()} or None
        headers = {_header_name(k): v for k, v in environ.items() if k.startswith("HTTP_")}
        for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if environ.get(key):
                headers[_header_name(key)] = environ[key]
        method = environ["REQUEST_METHOD"]
        event = {"httpMethod": method, "path": path, "resource": path, "body": body, "headers": headers,
                 "queryStringParameters": query, "pathParameters": None, "isBase64Encoded": False,
                 "requestContext": {"stage": "local", "path": path, "httpMethod": method,
                                    "requestId": str(uuid.uuid4()), "identity": {"sourceIp": environ.get("REMOTE_ADDR"),
                                                                              "userAgent": environ.get("HTTP_USER_AGENT")}}}
        result = through_gateway(self.runner, event)
        headers = list((result.get("headers") or {}).items())
        headers += [(k, v) for k, values in (result.get("multiValueHeaders") or {}).items() for v in values]
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        return _respond(start_response, result["statusCode"], (result.get("body") or "").encode("utf-8"), headers)

    def __enter__(self) -> ApiServer:
        self._thread.start()
        return self

    def __exit__(self, *_) -> None:
        close_waitress(self.server, self._thread)


def close_waitress(server, loop: threading.Thread) -> None:
    """Stop a running waitress server from another thread: its worker threads first (a request
    being served finishes, queued ones are cancelled; a worker that finishes after its channel
    closed would write to a closed descriptor and print a traceback), then every channel, closed
    by the loop thread itself through waitress's trigger (closed from here, a descriptor could
    vanish between the loop building its select() list and calling it: EBADF in the loop); the
    loop ends when no channel is left."""
    server.task_dispatcher.shutdown(cancel_pending=True, timeout=10)
    # waitress has no public stop; closing every channel of its map is what its own tests do
    server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))  # noqa: SLF001
    loop.join(timeout=10)


# ---------------------------------------------------------------- the S3 endpoint's gate

def _s3_error(start_response, status: int, code: str, message: str):
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{escape(message)}</Message>'
            f'<RequestId>{uuid.uuid4().hex}</RequestId></Error>').encode()
    return _respond(start_response, status, body, [("Content-Type", "application/xml")])


class PolicyRefused(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code = status, code


def signing_key(secret: str, date: str, region: str, service: str = "s3") -> bytes:
    key = f"AWS4{secret}".encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def check_post_policy(bucket: str, fields: dict[str, str], size: int, secret: str,
                      now: dt.datetime | None = None) -> None:
    """An S3 browser-based upload (POST Object) judged as S3 judges it: SigV4 signature over the
    policy, expiry, and every condition, each form field covered by one. Raises PolicyRefused."""
    fields = {k.lower(): v for k, v in fields.items()}
    if fields.get("x-amz-algorithm") != "AWS4-HMAC-SHA256" or "policy" not in fields:
        raise PolicyRefused(403, "AccessDenied", "a POST upload needs a SigV4 policy (x-amz-algorithm "
                                                 "AWS4-HMAC-SHA256, policy, x-amz-signature)")
    try:
        _, date, region, service, _ = fields["x-amz-credential"].split("/")
        policy = json.loads(base64.b64decode(fields["policy"], validate=True))
        expiration = dt.datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
        conditions = policy["conditions"]
    except (KeyError, ValueError, TypeError, AttributeError) as err:
        raise PolicyRefused(400, "InvalidPolicyDocument", f"the policy or credential cannot be read: {err}") from None
    expected = hmac.new(signing_key(secret, date, region, service), fields["policy"].encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, fields.get("x-amz-signature", "")):
        raise PolicyRefused(403, "SignatureDoesNotMatch", "the policy's signature does not match")
    if expiration <= (now or dt.datetime.now(dt.timezone.utc)):
        raise PolicyRefused(403, "AccessDenied", "Invalid according to Policy: Policy expired.")
    values = {**fields, "bucket": bucket}
    covered = {"bucket"}
    for condition in conditions:
        if isinstance(condition, dict):
            ((name, wanted),) = condition.items()
            rule = ["eq", f"${name}", wanted]
        else:
            rule = list(condition)
        if rule[0] == "content-length-range":
            low, high = int(rule[1]), int(rule[2])
            if size < low:
                raise PolicyRefused(400, "EntityTooSmall", f"Your proposed upload ({size} bytes) is smaller than "
                                                           f"the minimum allowed size ({low} bytes)")
            if size > high:
                raise PolicyRefused(400, "EntityTooLarge", f"Your proposed upload ({size} bytes) exceeds the "
                                                           f"maximum allowed size ({high} bytes)")
            continue
        operator, name, wanted = rule[0], str(rule[1]).lstrip("$").lower(), str(rule[2])
        covered.add(name)
        value = values.get(name, "")
        if (operator == "eq" and value != wanted) or (operator == "starts-with" and not value.startswith(wanted)):
            raise PolicyRefused(403, "AccessDenied", f"Invalid according to Policy: Policy Condition failed: "
                                                     f"[\"{operator}\", \"${name}\", \"{wanted}\"]")
    ignored = {"policy", "x-amz-signature", "file"}
    extra = sorted(name for name in fields if name not in covered | ignored and not name.startswith("x-ignore-"))
    if extra:
        raise PolicyRefused(403, "AccessDenied", f"Invalid according to Policy: Extra input fields: {', '.join(extra)}")


SIGNED_CLOCK_SKEW_S = 900  # as AWS: a signed request more than 15 minutes from the server's clock is refused


def check_signature(environ, secret: str, access_key: str, now: dt.datetime | None = None) -> None:
    """A request signed with SigV4, in its Authorization header or its query (a presigned URL), with
    the owner's key, judged as AWS judges it: the canonical request rebuilt from what arrived
    (method, raw path and query, the signed headers, the payload's hash), its signature
    recomputed, the time checked. Raises PolicyRefused. The body is read to hash it only when
    the client did not send its hash (x-amz-content-sha256, as every S3 client does)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or urllib.parse.quote(environ.get("PATH_INFO", "/"))
    path, _, query = raw.partition("?")
    pairs = [pair.partition("=") for pair in query.split("&") if pair]
    params = {urllib.parse.unquote(k): urllib.parse.unquote(v) for k, _, v in pairs}
    headers = {_header_name(k).lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = environ[key]
    try:
        if "X-Amz-Signature" in params:
            credential, signed_names = params["X-Amz-Credential"], params["X-Amz-SignedHeaders"]
            signature, stamp = params["X-Amz-Signature"], params["X-Amz-Date"]
            expires = int(params["X-Amz-Expires"])
            pairs = [p for p in pairs if p[0] != "X-Amz-Signature"]
            payload = "UNSIGNED-PAYLOAD"
        else:
            auth = headers["authorization"]
            algorithm, _, rest = auth.partition(" ")
            parts = dict(part.strip().split("=", 1) for part in rest.split(","))
            if algorithm != "AWS4-HMAC-SHA256":
                raise KeyError("authorization")
            credential, signed_names, signature = parts["Credential"], parts["SignedHeaders"], parts["Signature"]
            stamp, expires = headers["x-amz-date"], SIGNED_CLOCK_SKEW_S
            payload = headers.get("x-amz-content-sha256") or _body_hash(environ)
        key_id, date, region, service, _ = credential.split("/")
        signed_at = dt.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
    except (KeyError, ValueError):
        raise PolicyRefused(403, "AccessDenied", "local mode has users: requests must be signed (SigV4) with the "
                                                 "owner's keys, or be a presigned upload") from None
    if key_id != access_key:
        raise PolicyRefused(403, "InvalidAccessKeyId", f"the access key {key_id[:40]!r} is not this local mode's")
    if not -SIGNED_CLOCK_SKEW_S <= (now - signed_at).total_seconds() <= max(expires, 0):
        raise PolicyRefused(403, "AccessDenied", "Request has expired" if "X-Amz-Signature" in params
                            else "RequestTimeTooSkewed: the request's time is too far from the server's")
    names = signed_names.split(";")
    canonical = "\n".join([environ["REQUEST_METHOD"], path or "/", "&".join(f"{k}={v}" for k, _, v in sorted(pairs)),
                           "".join(f"{name}:{' '.join(headers.get(name, '').split())}\n" for name in names),
                           signed_names, payload])
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, f"{date}/{region}/{service}/aws4_request",
                         hashlib.sha256(canonical.encode()).hexdigest()])
    expected = hmac.new(signing_key(secret, date, region, service), to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise PolicyRefused(403, "SignatureDoesNotMatch", "the request's signature does not match")


def _body_hash(environ) -> str:
    """SHA-256 of a small body (DynamoDB's, SQS's JSON), put back for the server to read."""
    length = environ.get("CONTENT_LENGTH") or "0"
    body = environ["wsgi.input"].read(int(length)) if length.isdigit() and int(length) else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return hashlib.sha256(body).hexdigest()


class S3Gate:
    """WSGI middleware in front of moto's server (see the module doc). `signed_only()`: whether
    every request but a presigned POST must be signed with the owner's keys (local mode has users)."""

    def __init__(self, app, port: int, secret: str, allowed_origins: set[str], hosts: set[str] | None = None,
                 signed_only=lambda: False):
        self.app, self.hosts, self.secret = app, hosts or own_hosts(port), secret
        self.allowed_origins = allowed_origins  # the local API's own pages
        self.signed_only = signed_only

    def __call__(self, environ, start_response):
        if environ.get("HTTP_HOST", "") not in self.hosts:
            return _s3_error(start_response, 421, "MisdirectedRequest", f"local mode answers as {sorted(self.hosts)[0]} only")
        if environ.get("PATH_INFO", "").startswith("/moto-api") and environ.get("REMOTE_ADDR") not in ("127.0.0.1", "::1"):
            return _s3_error(start_response, 403, "AccessDenied", "the mock's own controls answer this machine only")
        origin = environ.get("HTTP_ORIGIN")
        if origin is not None and origin not in self.allowed_origins:
            return _s3_error(start_response, 403, "AccessDenied", f"requests from web pages on {origin[:100]} are refused")
        length = environ.get("CONTENT_LENGTH") or "0"
        if not length.isdigit():  # werkzeug passes it on unchecked: moto would answer 500
            return _s3_error(start_response, 400, "InvalidArgument", f"Content-Length {length[:40]!r} is not a byte count")
        if environ["REQUEST_METHOD"] == "POST" and environ.get("CONTENT_TYPE", "").startswith("multipart/form-data"):
            return self._post_upload(environ, start_response)
        if self.signed_only() and not environ.get("PATH_INFO", "").startswith("/moto-api"):
            try:
                check_signature(environ, self.secret, ACCESS_KEY)
            except PolicyRefused as refused:
                return _s3_error(start_response, refused.status, refused.code, str(refused))
        return self.app(environ, start_response)

    def _post_upload(self, environ, start_response):
        """A browser-based upload, read as it arrives: the file part straight into a temporary file
        (werkzeug's parser holds a chunk at a time), judged against its policy, then stored from
        that file. moto itself would hold the whole body in memory, twice (measured: a 1 GiB POST
        raised serve's RSS by 2.2 GiB); bench/bench_api.py measures this path at 1 and 4 GiB."""
        bucket = environ.get("PATH_INFO", "/").strip("/").split("/")[0]
        _, form, files = parse_form_data(environ, stream_factory=_file_part)  # Content-Length checked in __call__
        upload = files.get("file")
        if upload is None:
            return _s3_error(start_response, 400, "InvalidArgument", "a POST upload needs a file field")
        file = upload.stream  # the stored object's own buffer from here on
        try:
            check_post_policy(bucket, dict(form.items()), file.seek(0, io.SEEK_END), self.secret)
        except PolicyRefused as refused:
            file.close()
            return _s3_error(start_response, refused.status, refused.code, str(refused))
        calls.signed("api", "s3:PutObject", f"arn:aws:s3:::{bucket}/{form['key']}")  # the api signs every POST policy
        stored = moto_patches.put_posted_object(ACCOUNT, bucket, form["key"], file, dict(form.items()))
        location = f"http://{environ['HTTP_HOST']}/{bucket}/{urllib.parse.quote(form['key'])}"
        return _respond(start_response, 204, b"", [("ETag", stored.etag), ("Location", location)])


def _file_part(total_content_length, content_type, filename, content_length=None):
    """Where werkzeug puts a form's file part: a temporary file, whatever its size (its default
    keeps up to 500 KB in memory, then a spooled file that the store could not take as it is)."""
    return tempfile.TemporaryFile()
