"""Local mode's two HTTP doors, guarded as their AWS counterparts are.

The API: functions/api/app.py behind waitress on 127.0.0.1, as API Gateway puts it in AWS. Each
request becomes a REST API event, its answer the HTTP response. waitress (a well-kept pure-Python
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
from reelscope.local.names import ACCOUNT

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
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


class ApiServer:
    """The API handler behind waitress on 127.0.0.1 (see the module doc)."""

    def __init__(self, runner, port: int = 0):
        self.runner = runner
        try:
            self.server = create_server(self._app, host="127.0.0.1", port=port, threads=8, ident=None,
                                        channel_timeout=CHANNEL_TIMEOUT_S, max_request_body_size=MAX_API_BODY,
                                        max_request_header_size=64 * 1024, connection_limit=256, backlog=128,
                                        clear_untrusted_proxy_headers=True, expose_tracebacks=False)
        except OSError as err:
            raise ReelscopeError(f"API port {port} on 127.0.0.1: {err.strerror}; choose another with --api-port") from None
        self.port = int(self.server.effective_port)
        self.url = f"http://127.0.0.1:{self.port}"
        self.hosts = own_hosts(self.port)
        self._thread = threading.Thread(target=self.server.run, daemon=True)
        # "Task queue depth is N" for every request that waits for one of the 8 threads: a busy
        # moment, not a fault, and it would bury what serve prints.
        logging.getLogger("waitress.queue").setLevel(logging.ERROR)

    def _app(self, environ, start_response):
        host = environ.get("HTTP_HOST", "")
        if host not in self.hosts:  # DNS rebinding: a page on another name, resolved to this machine
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
                                    "requestId": str(uuid.uuid4()), "identity": {"sourceIp": environ.get("REMOTE_ADDR")}}}
        result, error = self.runner.invoke("api", event)
        if error:
            return _json(start_response, 500, "internal error")
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


class S3Gate:
    """WSGI middleware in front of moto's server (see the module doc)."""

    def __init__(self, app, port: int, secret: str, allowed_origins: set[str]):
        self.app, self.hosts, self.secret = app, own_hosts(port), secret
        self.allowed_origins = allowed_origins  # the local API's own pages

    def __call__(self, environ, start_response):
        if environ.get("HTTP_HOST", "") not in self.hosts:
            return _s3_error(start_response, 421, "MisdirectedRequest", "local mode answers as 127.0.0.1 only")
        origin = environ.get("HTTP_ORIGIN")
        if origin is not None and origin not in self.allowed_origins:
            return _s3_error(start_response, 403, "AccessDenied", f"requests from web pages on {origin[:100]} are refused")
        length = environ.get("CONTENT_LENGTH") or "0"
        if not length.isdigit():  # werkzeug passes it on unchecked: moto would answer 500
            return _s3_error(start_response, 400, "InvalidArgument", f"Content-Length {length[:40]!r} is not a byte count")
        if environ["REQUEST_METHOD"] == "POST" and environ.get("CONTENT_TYPE", "").startswith("multipart/form-data"):
            return self._post_upload(environ, start_response)
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
