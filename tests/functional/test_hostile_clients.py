"""The local API and S3 endpoint against hostile clients: malformed requests, pages on other sites,
DNS rebinding, bad framing, forged or stretched presigned POSTs, and a schema-driven fuzzer.
Every refusal is a 4xx that says why; nothing reaches a 500 or a traceback."""

from __future__ import annotations

import base64
import datetime as dt
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from reelscope.local.cloud import LocalCloud
from reelscope.local.servers import ApiServer, PolicyRefused, check_post_policy

JOB = "0" * 32


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    with LocalCloud(tmp_path_factory.mktemp("state")) as cloud, ApiServer(cloud.runner) as api:
        cloud.page_origins.add(api.url)
        yield cloud, api


def message(response) -> str:
    assert response.headers["Content-Type"] == "application/json", response.text
    return response.json()["message"]


def raw(port: int, data: bytes, timeout_s: float = 10) -> bytes:
    """What the server answers to these bytes, read until it closes the connection."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(data)
        sock.settimeout(timeout_s)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except ConnectionResetError:  # the server closed with bytes of ours unread, after answering
            pass
    return answer


def test_unknown_routes_and_methods_answer_in_the_api_s_shape(served):
    _, api = served
    response = requests.request("TRACE", f"{api.url}/jobs", timeout=10)
    assert (response.status_code, message(response), response.headers["Allow"]) == \
        (405, "TRACE /jobs: this route takes GET", "GET")
    response = requests.patch(f"{api.url}/jobs/{JOB}", timeout=10)
    assert (response.status_code, message(response)) == (405, f"PATCH /jobs/{JOB}: this route takes DELETE, GET")
    response = requests.get(f"{api.url}/jobs/%C2%84", timeout=10)  # the right method, an id no route takes
    assert (response.status_code, message(response)) == (404, "GET /jobs/\x84: no such resource")
    response = requests.get(f"{api.url}/nowhere/../etc", timeout=10)
    assert (response.status_code, message(response)) == (404, "GET /etc: no such route")
    response = requests.options(f"{api.url}/uploads", headers={"Origin": "https://elsewhere.example",
                                                                "Access-Control-Request-Method": "POST"}, timeout=10)
    assert response.status_code == 405 and "Access-Control-Allow-Origin" not in response.headers


@pytest.mark.parametrize("path", ["/uploads", "/ingest", f"/jobs/{JOB}/shares", f"/jobs/{JOB}/runs"])
def test_state_changing_routes_take_json_only(served, path):
    """A page on any site can send these without a preflight: form, text/plain and multipart bodies."""
    _, api = served
    for headers, body, shown in [
            ({"Content-Type": "application/x-www-form-urlencoded"}, "file_name=a.mp4", "application/x-www-form-urlencoded"),
            ({"Content-Type": "text/plain"}, '{"file_name": "a.mp4"}', "text/plain"),
            ({"Content-Type": "multipart/form-data"}, "--x\r\n", "multipart/form-data"),  # no boundary
            ({"Content-Type": "multipart/form-data; boundary=x"}, "--x--\r\n", "multipart/form-data; boundary=x"),
            ({}, "file_name=a.mp4", "missing")]:
        response = requests.post(api.url + path, data=body, headers=headers, timeout=10)
        assert (response.status_code, message(response)) == \
            (415, f"Content-Type {shown!r}: this route takes application/json"), (path, headers)


@pytest.mark.parametrize("path", ["/uploads", "/ingest", f"/jobs/{JOB}/shares"])
def test_json_nested_100000_deep_is_refused(served, path):
    _, api = served
    for body in ("[" * 100_000 + "]" * 100_000, '{"a":' * 100_000 + "1" + "}" * 100_000):
        response = requests.post(api.url + path, data=body, headers={"Content-Type": "application/json"}, timeout=30)
        assert (response.status_code, message(response)) == (422, "body: JSON nested too deeply")


def test_unknown_body_fields_are_refused_not_ignored(served):
    _, api = served
    response = requests.post(f"{api.url}/uploads", json={"file_name": "a.mp4", "contnet_type": "video/mp4"}, timeout=10)
    assert (response.status_code, message(response)) == (422, "contnet_type: Extra inputs are not permitted")
    response = requests.post(f"{api.url}/ingest", json={"url": "https://example.org/a.mp4", "priority": 1}, timeout=10)
    assert (response.status_code, message(response)) == (422, "priority: Extra inputs are not permitted")


def test_pages_on_other_origins_cannot_change_anything(served):
    _, api = served
    for headers, reason in [({"Origin": "https://attacker.example"}, "Origin https://attacker.example: pages on "
                                                                       "other origins may not change anything here"),
                            ({"Origin": "null"}, "Origin null: pages on other origins may not change anything here"),
                            ({"Sec-Fetch-Site": "cross-site"}, "Sec-Fetch-Site: pages on other sites may not change "
                                                               "anything here")]:
        response = requests.post(f"{api.url}/uploads", json={"file_name": "a.mp4"}, headers=headers, timeout=10)
        assert (response.status_code, message(response)) == (403, reason)
        assert "Access-Control-Allow-Origin" not in response.headers
    # The API's own pages (same origin) may; reads carry no Origin rule (CORS keeps their answers from other sites).
    response = requests.post(f"{api.url}/uploads", json={"file_name": "a.mp4"}, headers={"Origin": api.url}, timeout=10)
    assert response.status_code == 201
    response = requests.get(f"{api.url}/jobs", headers={"Origin": "https://attacker.example"}, timeout=10)
    assert response.status_code == 200 and "Access-Control-Allow-Origin" not in response.headers


def test_dns_rebinding_other_host_names_are_refused(served):
    cloud, api = served
    for host in (f"attacker.example:{api.port}", "127.0.0.1", f"127.0.0.1:{api.port + 1}", ""):
        response = requests.get(f"{api.url}/jobs", headers={"Host": host}, timeout=10)
        assert (response.status_code, message(response)) == \
            (421, f"Host {host!r}: this server answers as {api.url} only"), host
    for host in (f"127.0.0.1:{api.port}", f"localhost:{api.port}"):
        assert requests.get(f"{api.url}/jobs", headers={"Host": host}, timeout=10).status_code == 200
    # The S3 endpoint (moto answers anything, with permissive CORS) is gated the same way.
    response = requests.get(f"{cloud.endpoint}/reelscope-media", headers={"Host": "attacker.example"}, timeout=10)
    assert response.status_code == 421 and b"<Code>MisdirectedRequest</Code>" in response.content
    response = requests.put(f"{cloud.endpoint}/reelscope-media/uploads/x.mp4", data=b"x",
                            headers={"Origin": "https://attacker.example"}, timeout=10)
    assert response.status_code == 403 and b"requests from web pages on https://attacker.example are refused" in response.content


def test_framing_errors_and_oversized_bodies_are_4xx(served):
    _, api = served
    host = f"Host: 127.0.0.1:{api.port}\r\n".encode()
    answer = raw(api.port, b"POST /uploads HTTP/1.1\r\n" + host + b"Content-Length: 1000000000000\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 413 Request Entity Too Large\r\n")
    answer = raw(api.port, b"POST /uploads HTTP/1.1\r\n" + host + b"Content-Length: -5\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    answer = raw(api.port, b"POST /uploads HTTP/1.1\r\n" + host + b"Content-Length: abc\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert raw(api.port, b"NONSENSE\r\n\r\n").startswith(b"HTTP/1.0 400 Bad Request\r\n")
    answer = raw(api.port, b"GET /jobs HTTP/1.1\r\n" + host + b"X-Big: " + b"a" * 66_000 + b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.0 431 Request Header Fields Too Large\r\n")  # the request line unread
    answer = raw(api.port, b"POST /uploads HTTP/1.1\r\n" + host + b"Content-Type: application/json\r\n"
                           b"Connection: close\r\nContent-Length: 3\r\n\r\n\xff\xfe\xfd")
    assert answer.startswith(b"HTTP/1.1 422 Unprocessable Entity\r\n") and answer.endswith(b'{"message": "body: not UTF-8 text"}')


def test_the_s3_endpoint_refuses_bad_framing(served):
    cloud, _ = served
    for length in (b"abc", b"-5"):
        answer = raw(cloud.port, b"POST /reelscope-media HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n"
                                 b"Content-Type: multipart/form-data; boundary=x\r\nContent-Length: %s\r\n\r\n--x--\r\n"
                                 % (cloud.port, length))
        assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n") and b"<Code>InvalidArgument</Code>" in answer \
            and b"is not a byte count" in answer, answer[:300]


def test_idle_and_half_open_connections_hold_no_worker(served):
    """waitress reads each request whole before a worker thread sees it: 40 clients that send half a
    request and wait (more than its 8 workers) leave the API answering at once."""
    _, api = served
    stalled = []
    for _ in range(40):
        sock = socket.create_connection(("127.0.0.1", api.port))
        sock.sendall(b"POST /uploads HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{")
        stalled.append(sock)
    for _ in range(40):  # and 40 that connect and hang up mid-request
        with socket.create_connection(("127.0.0.1", api.port)) as sock:
            sock.sendall(b"GET /jo")
    try:
        started = time.monotonic()
        assert requests.get(f"{api.url}/jobs", timeout=10).status_code == 200
        assert time.monotonic() - started < 5
    finally:
        for sock in stalled:
            sock.close()


def presigned_post(api, **fields) -> dict:
    response = requests.post(f"{api.url}/uploads", json={"file_name": "clip.mp4", **fields}, timeout=10)
    assert response.status_code == 201, response.text
    return response.json()


def test_presigned_posts_are_held_to_their_policy(served, monkeypatch):
    """What S3 enforces on a browser upload, local mode enforces too; an accepted form lands."""
    cloud, api = served
    monkeypatch.setenv("REELSCOPE_MAX_BYTES", "1000")
    grant = presigned_post(api)
    assert grant["fields"]["x-amz-algorithm"] == "AWS4-HMAC-SHA256"  # SigV4, not SigV2's AWSAccessKeyId
    for fields, data, headers, (status, code, text) in [
            ({"Content-Type": "text/html"}, b"x" * 10, {}, (403, "AccessDenied", '["eq", "$content-type", "video/mp4"]')),
            ({"key": "uploads/elsewhere.mp4"}, b"x" * 10, {}, (403, "AccessDenied", f'["eq", "$key", "{grant["key"]}"]')),
            ({"acl": "public-read"}, b"x" * 10, {}, (403, "AccessDenied", "Extra input fields: acl")),
            ({"x-amz-signature": "0" * 64}, b"x" * 10, {}, (403, "SignatureDoesNotMatch", "signature does not match")),
            ({"policy": base64.b64encode(b'{"expiration": "2099-01-01T00:00:00Z", "conditions": []}').decode()},
             b"x" * 10, {}, (403, "SignatureDoesNotMatch", "signature does not match")),
            ({}, b"x" * 1001, {}, (400, "EntityTooLarge", "(1001 bytes) exceeds the maximum allowed size (1000 bytes)")),
            ({}, b"", {}, (400, "EntityTooSmall", "(0 bytes) is smaller than the minimum allowed size (1 bytes)")),
            ({}, b"x" * 10, {"Origin": "https://attacker.example"}, (403, "AccessDenied", "web pages on https://attacker"))]:
        response = requests.post(grant["url"], data={**grant["fields"], **fields}, files={"file": ("clip.mp4", data)},
                                 headers=headers, timeout=10)
        assert response.status_code == status and f"<Code>{code}</Code>" in response.text and text in response.text, \
            (fields, response.text)
    assert "Contents" not in cloud.s3.list_objects_v2(Bucket="reelscope-media", Prefix=grant["key"])
    response = requests.post(grant["url"], data=grant["fields"], files={"file": ("clip.mp4", b"x" * 1000)},
                             headers={"Origin": api.url}, timeout=10)  # the API's own page may upload
    assert response.status_code == 204, response.text
    assert cloud.s3.head_object(Bucket="reelscope-media", Key=grant["key"])["ContentLength"] == 1000


def test_an_expired_policy_is_refused():
    import hashlib
    import hmac

    from reelscope.local.servers import signing_key

    policy = base64.b64encode(json.dumps({"expiration": "2026-01-01T00:00:00Z", "conditions": [
        {"bucket": "b"}, {"key": "k"}, {"x-amz-algorithm": "AWS4-HMAC-SHA256"},
        {"x-amz-credential": "local/20260101/us-east-1/s3/aws4_request"}, {"x-amz-date": "20260101T000000Z"}]}).encode()).decode()
    fields = {"key": "k", "x-amz-algorithm": "AWS4-HMAC-SHA256", "x-amz-credential": "local/20260101/us-east-1/s3/aws4_request",
              "x-amz-date": "20260101T000000Z", "policy": policy,
              "x-amz-signature": hmac.new(signing_key("local", "20260101", "us-east-1"), policy.encode(),
                                          hashlib.sha256).hexdigest()}
    check_post_policy("b", fields, 5, "local", now=dt.datetime(2025, 12, 31, tzinfo=dt.timezone.utc))
    with pytest.raises(PolicyRefused, match=r"^Invalid according to Policy: Policy expired\.$"):
        check_post_policy("b", fields, 5, "local", now=dt.datetime(2026, 1, 1, 0, 0, 1, tzinfo=dt.timezone.utc))
    with pytest.raises(PolicyRefused, match=r"Policy Condition failed: \[\"eq\", \"\$bucket\", \"b\"\]"):
        check_post_policy("other", fields, 5, "local", now=dt.datetime(2025, 12, 31, tzinfo=dt.timezone.utc))


def test_a_schema_driven_fuzzer_finds_no_server_error_and_no_undocumented_answer(served, capfd, tmp_path):
    """schemathesis, from the served OpenAPI document, against every route on loopback: bounded
    examples per route, a fixed seed; no 5xx, every answer's status code, content type and body as
    the document declares them, and nothing logged as a traceback."""
    _, api = served
    checks = "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance"
    command = [str(Path(sys.executable).with_name("st")), "run", f"{api.url}/openapi.json", "--checks", checks,
               "--max-examples", "15", "--seed", "1", "--request-timeout", "30", "--no-color"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)  # its cache stays there
    (tmp_path / "st.out").write_text(done.stdout)
    assert done.returncode == 0, done.stdout[-3000:]
    generated = int(done.stdout.split(" generated, ")[0].rsplit("\n", 1)[-1].strip())
    assert generated >= 200 and f"{generated} generated, {generated} passed" in done.stdout
    captured = capfd.readouterr()
    assert "Traceback" not in captured.out + captured.err


def test_concurrent_requests_each_get_their_own_answer(served):
    """Many clients at once, each with its own body and path: every answer is its own request's.
    Powertools keeps the request being resolved on its BaseRouter class, shared by every resolver
    in a process, so local mode (many requests at once, one process) must not resolve two at once."""
    from concurrent.futures import ThreadPoolExecutor

    _, api = served

    def ask(i: int) -> bool:
        if i % 2:
            response = requests.post(f"{api.url}/uploads", json={"file_name": f"clip-{i}.mp4"}, timeout=30)
            return response.status_code == 201 and response.json()["key"].endswith(f"/clip-{i}.mp4")
        job = f"{i:032x}"
        response = requests.get(f"{api.url}/jobs/{job}", timeout=30)
        return (response.status_code, response.json()) == (404, {"message": f"job {job} not found"})

    switching = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch as often as they can: a shared request shows at once
    try:
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(ask, range(400)))
    finally:
        sys.setswitchinterval(switching)
    assert answers.count(False) == 0, answers.count(False)


def test_stopping_with_requests_in_flight_prints_no_traceback(capfd):
    """serve stopped while requests are being answered and others wait: those being answered finish,
    the waiting ones are dropped, and nothing is printed (a worker that finished after its channel
    closed wrote to a closed descriptor: 'OSError: [Errno 9] Bad file descriptor')."""
    import threading

    class SlowRunner:  # the API handler taking its time (the authorizer lets everyone in)
        def invoke(self, name, event):
            if name == "authorizer":
                return {"principalId": "local", "context": {}}, None
            time.sleep(0.5)
            return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": "{}"}, None

    answers: list[int] = []

    def ask(url: str) -> None:
        try:
            answers.append(requests.get(f"{url}/jobs", timeout=10).status_code)
        except requests.ConnectionError:
            answers.append(0)

    with ApiServer(SlowRunner()) as api:
        clients = [threading.Thread(target=ask, args=(api.url,)) for _ in range(12)]  # 8 served, 4 waiting
        for client in clients:
            client.start()
        time.sleep(0.2)
    for client in clients:
        client.join()
    assert answers.count(200) >= 8 and len(answers) == 12
    captured = capfd.readouterr()
    assert "Traceback" not in captured.out + captured.err, captured.err[-2000:]


def test_stopping_closes_the_channels_in_the_server_loop(monkeypatch):
    """Stopping serve closes every open connection from the server's own loop thread: closed from
    the stopping thread, a descriptor could vanish between the loop building its select() list
    and calling select (an unhandled 'Bad file descriptor' in the loop thread, seen in CI)."""
    import socket
    import threading

    from waitress import channel

    closed_in: set[str] = set()
    close = channel.HTTPChannel.close

    def recording_close(self):
        closed_in.add(threading.current_thread().name)
        close(self)

    monkeypatch.setattr(channel.HTTPChannel, "close", recording_close)
    unhandled: list = []
    monkeypatch.setattr(threading, "excepthook", unhandled.append)
    with ApiServer(None) as api:
        idle = [socket.create_connection(("127.0.0.1", api.port)) for _ in range(20)]
        loop = api._thread.name
        time.sleep(0.3)  # every connection accepted: a channel in the loop's map
    for sock in idle:
        sock.close()
    assert closed_in == {loop}, closed_in
    assert not api._thread.is_alive() and not unhandled
