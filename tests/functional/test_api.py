"""The API handler in local mode: a presigned POST really uploads and starts a job; job status; refusals."""

from __future__ import annotations

import contextlib
import json
import re
import time

import pytest
import requests

from reelscope.analysis import pipeline
from reelscope.local.cloud import LocalCloud

from ..conftest import MAN, WOMAN, alternating, talk


def request(method: str, path: str, body: dict | None = None, resource: str | None = None, params: dict | None = None):
    return {"httpMethod": method, "path": path, "resource": resource or path, "pathParameters": params,
            "headers": {"Content-Type": "application/json"}, "queryStringParameters": None,
            "body": json.dumps(body) if body is not None else None, "isBase64Encoded": False,
            "requestContext": {"stage": "v1", "httpMethod": method, "path": f"/v1{path}", "requestId": "test"}}


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    with LocalCloud(tmp_path_factory.mktemp("state")) as running:
        yield running


def call(cloud, event) -> tuple[int, dict]:
    result = cloud.api(event)
    return result["statusCode"], json.loads(result["body"])


def test_presigned_post_uploads_under_uploads_and_starts_a_job(cloud):
    status, body = call(cloud, request("POST", "/uploads", {"file_name": "../../My Clip (1).mp4", "content_type": "video/mp4"}))
    assert status == 201
    assert body["key"].startswith("uploads/") and body["key"].endswith("/My_Clip_1_.mp4")
    assert body["fields"]["key"] == body["key"] and body["expires_in"] == 300
    response = requests.post(body["url"], data=body["fields"], files={"file": ("clip.mp4", b"not really a video")},
                             timeout=30)
    assert response.status_code in (200, 204), response.text
    (result,) = [r for r in cloud.deliver_uploads() if r["key"] == body["key"]]
    assert result["outcome"] == "started"
    job = cloud.wait(result["job_id"], timeout_s=120)
    assert job["status"] == "FAILED" and job["error"].startswith("My_Clip_1_.mp4: not a readable media file")
    listed = [j for j in get(cloud, "/jobs")[1]["jobs"] if j["job_id"] == result["job_id"]]
    assert [j["file_name"] for j in listed] == ["My_Clip_1_.mp4"]  # a job refused at probe is still named

    status, body = call(cloud, request("GET", f"/jobs/{result['job_id']}", resource="/jobs/{job_id}",
                                       params={"job_id": result["job_id"]}))
    assert status == 200
    assert body["job"]["status"] == "FAILED" and body["steps"]["probe"]["status"] == "FAILED"
    assert "PK" not in body["job"]


def test_refusals_name_the_field(cloud):
    status, body = call(cloud, request("POST", "/uploads", {"file_name": "notes.txt", "content_type": "text/plain"}))
    assert (status, body["message"]) == (422, "content_type: String should match pattern '^video/[A-Za-z0-9.+-]+$'")
    status, body = call(cloud, request("POST", "/uploads", {"content_type": "video/mp4"}))
    assert (status, body["message"]) == (422, "file_name: Field required")
    status, body = call(cloud, request("POST", "/uploads", {"file_name": "   ", "content_type": 7}))
    assert status == 422 and body["message"].startswith("file_name: String should match pattern") \
        and "; content_type: Input should be a valid string" in body["message"]
    broken = {**request("POST", "/uploads"), "body": "{not json"}
    assert call(cloud, broken) == (422, {"message": "body: JSON decode error"})
    status, body = call(cloud, request("GET", "/jobs/" + "0" * 32, resource="/jobs/{job_id}", params={"job_id": "0" * 32}))
    assert (status, body["message"]) == (404, f"job {'0' * 32} not found")
    status, body = call(cloud, request("GET", "/jobs/nope", resource="/jobs/{job_id}", params={"job_id": "nope"}))
    assert (status, body["message"]) == (422, "job_id: String should match pattern '^[0-9a-f]{32}$'")


@pytest.fixture(scope="module")
def people_job(cloud, people_video, model_dir, fall_weights):
    with pytest.MonkeyPatch.context() as env:
        env.setenv("REELSCOPE_MODEL_DIR", str(model_dir))
        env.setenv("REELSCOPE_YOLO_WEIGHTS", str(fall_weights))
        result = cloud.upload(people_video, "uploads/people.mp4")
        assert cloud.wait(result["job_id"], timeout_s=300)["status"] == "SUCCEEDED"
    return result["job_id"]


def get(cloud, path: str, resource: str | None = None, params: dict | None = None, query: dict | None = None):
    return call(cloud, {**request("GET", path, resource=resource, params=params), "queryStringParameters": query})


def test_jobs_list_and_detail(cloud, people_job, tmp_path):
    import hashlib

    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    result = cloud.upload(broken, "uploads/broken.mp4")
    assert cloud.wait(result["job_id"], timeout_s=120)["status"] == "FAILED"

    status, first_page = get(cloud, "/jobs")
    body = first_page
    listed = [job["job_id"] for job in body["jobs"]]
    assert status == 200 and listed.index(result["job_id"]) < listed.index(people_job)  # newest first
    assert [job["created_at"] for job in body["jobs"]] == sorted((job["created_at"] for job in body["jobs"]), reverse=True)
    (people,) = [job for job in body["jobs"] if job["job_id"] == people_job]
    assert (people["status"], people["file_name"], people["report_path"]) == \
        ("SUCCEEDED", "people.mp4", f"/jobs/{people_job}/report")
    assert people["duration_s"] == pytest.approx(6.0, abs=0.1) and isinstance(people["duration_s"], float)
    millisecond_utc = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$")  # one format, whoever wrote it
    assert millisecond_utc.match(people["created_at"]) and millisecond_utc.match(people["finished_at"]), people

    pages, query = [], {"limit": "1"}
    while True:  # one job a page, following `next` to the end
        status, body = get(cloud, "/jobs", query=query)
        pages += [job["job_id"] for job in body["jobs"]]
        if not body["next"]:
            break
        query = {"limit": "1", "next": body["next"]}
    assert pages == listed
    assert {job["status"] for job in get(cloud, "/jobs", query={"status": "FAILED"})[1]["jobs"]} == {"FAILED"}
    assert get(cloud, "/jobs", query={"status": "DONE"})[1]["message"].startswith("status: Input should be 'QUEUED'")
    assert get(cloud, "/jobs", query={"next": "%%%"}) == (422, {"message": "next: not a page token from this API"})

    home = cloud.api(request("GET", "/"))  # the library page, behind stage v1
    assert home["statusCode"] == 200 and '"api_base": "/v1"' in home["body"]
    assert people["poster_url"] and requests.get(people["poster_url"], timeout=30).content[:2] == b"\xff\xd8"
    (broken_job,) = [job for job in first_page["jobs"] if job["job_id"] == result["job_id"]]
    assert broken_job["poster_url"] is None and broken_job["file_name"] == "broken.mp4"
    assert broken_job["error"].startswith("broken.mp4: not a readable media file") and people["error"] is None

    status, body = get(cloud, f"/jobs/{people_job}", "/jobs/{job_id}", {"job_id": people_job})
    assert body["job"]["media"]["duration_s"] == pytest.approx(6.0, abs=0.1) and body["job"]["media"]["has_audio"] is False
    assert set(body["steps"]) == set(pipeline.STEP_ORDER)
    assert body["steps"].pop("translate")["status"] == "SKIPPED"  # the bundled model does not translate
    assert all(step["status"] == "SUCCEEDED" and step["duration_s"] > 0 for step in body["steps"].values())
    steps = body["steps"].values()
    assert all(isinstance(step["duration_s"], float) and millisecond_utc.match(step["ended_at"]) for step in steps)
    assert millisecond_utc.match(body["job"]["finished_at"]) and isinstance(body["job"]["media"]["duration_s"], float)
    manifest = cloud.store.get_json(f"jobs/{people_job}/manifest.json")
    paged = ("evidence", "keyframe", "thumbnail", "search-index")  # one file per entity, shot or 10 s
    expected = {a["path"]: a["sha256"] for a in manifest["artifacts"] if a["kind"] not in paged}
    assert set(body["links"]) == set(expected) and "search/vectors.json" not in body["links"]
    report_pdf = requests.get(body["links"]["report.pdf"], timeout=30).content
    assert hashlib.sha256(report_pdf).hexdigest() == expected["report.pdf"]
    evidence = sorted(a["path"] for a in manifest["artifacts"] if a["kind"] == "evidence")
    # the person ranges (each photo shows 1 s: its text, read in one sample, is audit material in ocr.json)
    assert body["artifacts"]["evidence"]["count"] == len(evidence) >= 2
    assert body["artifacts"]["report"]["count"] == 2  # report.json and report.pdf
    assert sum(kind["size_bytes"] for kind in body["artifacts"].values()) == sum(a["size_bytes"] for a in manifest["artifacts"])
    assert sum(step["output_count"] for step in body["steps"].values()) == sum(
        len(cloud.store.step_outputs(record)) for record in cloud.store.steps(people_job).values())
    assert "outputs" not in body["steps"]["detect"] and body["steps"]["ocr"]["summary"]["wall_clock"] == ""

    listed, query = [], {"kind": "evidence", "limit": "2"}
    while True:  # the evidence frames two at a time, each with a link
        status, page = get(cloud, f"/jobs/{people_job}/artifacts", "/jobs/{job_id}/artifacts", {"job_id": people_job},
                           query=query)
        assert status == 200 and len(page["artifacts"]) <= 2
        listed += [a["path"] for a in page["artifacts"]]
        if not page["next"]:
            break
        query = {**query, "next": page["next"]}
    assert listed == evidence
    assert requests.get(page["artifacts"][-1]["url"], timeout=30).content[:2] == b"\xff\xd8"
    status, page = get(cloud, f"/jobs/{people_job}/artifacts", "/jobs/{job_id}/artifacts", {"job_id": people_job},
                       query={"kind": "no-such-kind"})
    assert (status, page["artifacts"], page["next"]) == (200, [], None)
    status, page = get(cloud, f"/jobs/{people_job}/artifacts", "/jobs/{job_id}/artifacts", {"job_id": people_job},
                       query={"kind": "evidence", "next": "x"})
    assert status == 422 and page["message"].startswith("next:")


def test_openapi_document(cloud):
    from pathlib import Path

    status, document = get(cloud, "/openapi.json")
    assert status == 200 and document["info"]["title"] == "reelscope"
    assert set(document["paths"]) == {
        "/", "/openapi.json", "/uploads", "/search", "/ingest", "/ingest/{fetch_id}", "/jobs", "/jobs/{job_id}",
        "/jobs/{job_id}/artifacts", "/jobs/{job_id}/report", "/jobs/{job_id}/runs", "/jobs/{job_id}/speakers",
        "/jobs/{job_id}/shares", "/jobs/{job_id}/shares/{token}", "/s/{token}",
        "/s/{token}/report.json", "/jobs/{job_id}/exports/{name}", "/jobs/{job_id}/audit", "/audit", "/cases/{case}",
        "/auth/login", "/auth/callback", "/auth/logout", "/me", "/signing-key"}
    mode = next(p for p in document["paths"]["/search"]["get"]["parameters"] if p["name"] == "mode")
    assert mode["schema"]["enum"] == ["keyword", "semantic", "hybrid"]
    committed = json.loads((Path(__file__).resolve().parents[2] / "docs" / "openapi.json").read_text())
    assert committed == document, "docs/openapi.json is stale: reelscope openapi > docs/openapi.json"


def test_share_links(cloud, people_job):
    import hashlib

    from reelscope.cloud.responses import token_hash

    job_id = people_job
    shares = f"/jobs/{job_id}/shares"

    status, share = call(cloud, request("POST", shares, {"expires_in_s": 3600}, "/jobs/{job_id}/shares", {"job_id": job_id}))
    assert status == 201 and len(share["token"]) == 32 and share["path"] == f"/s/{share['token']}"
    item = cloud.store.share(token_hash(share["token"]))
    assert item["job_id"] == job_id and share["token"] not in json.dumps(item)  # only the hash is stored

    page = request("GET", share["path"], resource="/s/{token}", params={"token": share["token"]})
    opened = request("GET", f"{share['path']}/report.json", resource="/s/{token}/report.json", params={"token": share["token"]})
    status, body = call(cloud, opened)
    assert status == 200 and body["report"]["source"]["file_name"] == "people.mp4"
    manifest = cloud.store.get_json(f"jobs/{job_id}/manifest.json")
    for artifact in manifest["artifacts"]:
        if artifact["path"] in ("report.pdf", "720p.mp4"):
            data = requests.get(body["links"][artifact["path"]], timeout=30).content
            assert hashlib.sha256(data).hexdigest() == artifact["sha256"]

    # A token opens its own report only: another job's revocation route does not accept it.
    other = "1" * 32
    assert call(cloud, request("DELETE", f"/jobs/{other}/shares/{share['token']}", resource="/jobs/{job_id}/shares/{token}",
                               params={"job_id": other, "token": share["token"]}))[0] == 404
    assert call(cloud, request("GET", f"/s/{'A' * 32}/report.json", resource="/s/{token}/report.json",
                               params={"token": "A" * 32})) == (404, {"message": "share link not found"})

    revoke = request("DELETE", f"{shares}/{share['token']}", resource="/jobs/{job_id}/shares/{token}",
                     params={"job_id": job_id, "token": share["token"]})
    assert cloud.api(revoke)["statusCode"] == 204
    assert call(cloud, opened) == (410, {"message": "share link revoked"})
    answer = cloud.api(page)  # a browser opening the link gets a page that says so
    assert answer["statusCode"] == 410 and answer["multiValueHeaders"]["Content-Type"] == ["text/html; charset=utf-8"]
    assert '"message": "share link revoked"' in answer["body"] and "<h1" in answer["body"]

    cloud.store.put_share(token_hash("B" * 32), job_id, expires_at=1)  # expired long ago
    assert call(cloud, request("GET", f"/s/{'B' * 32}/report.json", resource="/s/{token}/report.json",
                               params={"token": "B" * 32})) == (410, {"message": "share link expired"})
    assert call(cloud, request("POST", shares, {"expires_in_s": 5}, "/jobs/{job_id}/shares", {"job_id": job_id}))[0] == 422
    assert call(cloud, request("POST", f"/jobs/{other}/shares", {}, "/jobs/{job_id}/shares", {"job_id": other}))[0] == 404


@contextlib.contextmanager
def serving_videos():
    """An HTTP server on loopback: /slow.mp4 trickles forever, any other path is a small "video"."""
    import http.server
    import threading

    class Serve(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/slow.mp4":  # 20 bytes/s, forever
                self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nContent-Length: 100000\r\n\r\n")
                with contextlib.suppress(OSError):
                    while True:
                        self.wfile.write(b"x")
                        self.wfile.flush()
                        time.sleep(0.05)
                return
            body = b"fetched, but not really a video"
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Serve)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()


@pytest.fixture
def video_server():
    with serving_videos() as url:
        yield url


def fetch_outcome(cloud, accepted: dict, timeout_s: float = 30) -> dict:
    """The fetch record once the fetch (run asynchronously, as in AWS) has ended."""
    deadline = time.monotonic() + timeout_s
    while True:
        status, record = call(cloud, request("GET", accepted["status_path"], resource="/ingest/{fetch_id}",
                                             params={"fetch_id": accepted["fetch_id"]}))
        assert status == 200
        if record["status"] != "QUEUED" or time.monotonic() > deadline:
            return record
        time.sleep(0.2)


def test_url_ingest(cloud, video_server, monkeypatch):
    monkeypatch.setenv("REELSCOPE_FETCH_ALLOW_LOOPBACK", "true")  # the test server lives on loopback
    status, body = call(cloud, request("POST", "/ingest", {"url": f"{video_server}/clips/Harbor%20Cam.mp4"}))
    assert status == 202 and body["key"].startswith("uploads/") and body["key"].endswith("/Harbor_Cam.mp4")
    record = fetch_outcome(cloud, body)
    assert (record["status"], record["size_bytes"]) == ("SUCCEEDED", 31)
    (started,) = [r for r in cloud.deliver_uploads() if r["key"] == body["key"]]  # the upload starts a job
    job = cloud.wait(started["job_id"], timeout_s=120)
    assert job["status"] == "FAILED" and "not a readable media file" in job["error"]

    monkeypatch.setenv("REELSCOPE_FETCH_ALLOW_LOOPBACK", "false")
    status, body = call(cloud, request("POST", "/ingest", {"url": f"{video_server}/clip.mp4"}))
    assert status == 202  # accepted; the fetch itself refuses the address
    record = fetch_outcome(cloud, body)
    assert (record["status"], record["error"]) == ("FAILED", "127.0.0.1 is a loopback address")
    assert "Contents" not in cloud.s3.list_objects_v2(Bucket="reelscope-media", Prefix=body["key"])
    # A refusal is final: the fetch function returns it (Lambda retries a raised error, fetching again in vain).
    from reelscope.cloud import jobs
    from reelscope.settings import Settings

    outcome = jobs.fetch_url("f" * 32, f"{video_server}/clip.mp4", "uploads/f/clip.mp4", Settings.from_env())
    assert outcome == {"fetch_id": "f" * 32, "key": "uploads/f/clip.mp4", "error": "127.0.0.1 is a loopback address"}

    assert call(cloud, request("POST", "/ingest", {"url": "file:///etc/passwd"}))[0] == 422
    assert call(cloud, request("POST", "/ingest", {}))[0] == 422
    assert call(cloud, request("GET", "/ingest/" + "0" * 32, resource="/ingest/{fetch_id}",
                               params={"fetch_id": "0" * 32}))[0] == 404


def test_a_slow_server_answers_at_once_and_fails_the_fetch(cloud, video_server, monkeypatch):
    """POST /ingest answers 202 before the fetch has read a byte; a peer sending 20 bytes/s fails
    the fetch on the minimum rate, and nothing of it lands under uploads/."""
    for name, value in [("FETCH_ALLOW_LOOPBACK", "true"), ("FETCH_MIN_BYTES_PER_S", "1000"), ("FETCH_RATE_GRACE_S", "1")]:
        monkeypatch.setenv(f"REELSCOPE_{name}", value)
    started = time.monotonic()
    status, body = call(cloud, request("POST", "/ingest", {"url": f"{video_server}/slow.mp4"}))
    assert status == 202 and time.monotonic() - started < 1.0
    record = fetch_outcome(cloud, body)
    assert record["status"] == "FAILED" and record["error"].startswith("127.0.0.1: ") \
        and ", under the minimum of 1000 (" in record["error"], record
    assert "Contents" not in cloud.s3.list_objects_v2(Bucket="reelscope-media", Prefix=body["key"].rsplit("/", 1)[0])


def test_a_running_job_says_how_far_it_is_and_about_how_long_it_has_left(cloud):
    job_id = "e" * 32
    cloud.store.create_job(job_id, {"bucket": "reelscope-media", "key": "uploads/hour.mp4", "size": 1, "version": "v"},
                           job_id, "default")
    cloud.store.update_job(job_id, status="RUNNING", media={"duration_s": 3600.0}, source_file_name="hour.mp4")
    cloud.store.start_step(job_id, "probe", 1)
    cloud.store.end_step(job_id, "probe", 1.0)
    cloud.store.start_step(job_id, "transcribe", 1)
    status, body = get(cloud, f"/jobs/{job_id}", "/jobs/{job_id}", {"job_id": job_id})
    assert status == 200, body
    progress = body["progress"]
    assert progress["steps_ended"] == 1 and progress["steps"] == 11
    # Nothing ended here long enough to learn from yet: the default rates, the longest branch (ocr) 0.2 s per media second.
    assert progress["rates"] == "defaults (2 cores)" and 300 < progress["eta_s"] < 1800


def test_a_finished_job_runs_again_as_a_new_execution(cloud, people_job, model_dir, fall_weights):
    """POST /jobs/{id}/runs: 202, a second execution of the same definition on the same upload; refused
    (409) while it runs; the job ends with its steps counted for the new run and its artifacts."""
    path = f"/jobs/{people_job}/runs"
    before = cloud.store.steps(people_job)
    detail = ("/jobs/{job_id}", {"job_id": people_job})
    shown = get(cloud, f"/jobs/{people_job}", *detail)[1]  # read and kept: the job is finished
    assert {name: step["started_at"] for name, step in shown["steps"].items()} == \
           {name: step["started_at"] for name, step in before.items()}
    with pytest.MonkeyPatch.context() as env:
        env.setenv("REELSCOPE_MODEL_DIR", str(model_dir))
        env.setenv("REELSCOPE_YOLO_WEIGHTS", str(fall_weights))
        status, body = call(cloud, request("POST", path, resource="/jobs/{job_id}/runs", params={"job_id": people_job}))
        assert status == 202, body
        assert body == {"job_id": people_job, "run": 2, "execution_name": f"{people_job}-run2", "status": "QUEUED",
                        "status_path": f"/jobs/{people_job}"}
        status, body = call(cloud, request("POST", path, resource="/jobs/{job_id}/runs", params={"job_id": people_job}))
        assert status == 409 and body["message"].startswith(f"job {people_job} is ")
        job = cloud.wait(people_job, timeout_s=300)
    assert job["status"] == "SUCCEEDED" and job["run"] == 2 and "error" not in job
    executions = {e["name"] for e in cloud.sfn.list_executions(stateMachineArn=cloud.state_machine_arn)["executions"]}
    assert {people_job, f"{people_job}-run2"} <= executions
    after = cloud.store.steps(people_job)
    # The same code and settings: probe runs again, every other step is reused, not run.
    assert set(after) == set(before) and after["probe"]["started_at"] > before["probe"]["ended_at"]
    assert all(after[n]["reused"] and after[n]["started_at"] == before[n]["started_at"] for n in set(after) - {"probe"})
    assert all(step["run"] == 2 for step in after.values())
    shown = get(cloud, f"/jobs/{people_job}", *detail)[1]  # the rerun's steps, not the first run's kept ones
    assert shown["job"]["run"] == 2
    assert {name: step["started_at"] for name, step in shown["steps"].items()} == \
           {name: step["started_at"] for name, step in after.items()}
    unknown = "0" * 32
    status, body = call(cloud, request("POST", f"/jobs/{unknown}/runs", resource="/jobs/{job_id}/runs",
                                       params={"job_id": unknown}))
    assert (status, body) == (404, {"message": f"job {unknown} not found"})


def test_malformed_urls_and_page_tokens_are_the_client_s_error(cloud):
    import base64

    for url, reason in [("http://[::1/a.mp4", "Invalid IPv6 URL"), ("http://[zz]/a.mp4", "does not appear to be an IPv4 or IPv6"),
                        ("http://example.org:99999/a.mp4", "Port out of range 0-65535")]:
        status, body = call(cloud, request("POST", "/ingest", {"url": url}))
        assert status == 422 and body["message"].startswith("url: ") and reason in body["message"], (url, body)
    for shape in ([], "x", 7, None, {}, {"PK": "JOB#1"}, {"PK": 1, "SK": "JOB", "entity": "JOB", "created_at": "x"},
                  {"PK": "a", "SK": "b", "entity": "JOB", "created_at": "x", "extra": "y"}, [{"PK": "a"}]):
        token = base64.urlsafe_b64encode(json.dumps(shape).encode()).decode()
        assert get(cloud, "/jobs", query={"next": token}) == (422, {"message": "next: not a page token from this API"}), shape


def test_a_long_jobs_records_and_answers_stay_small(cloud):
    """Hours of footage publish thousands of files (an evidence frame per range, a thumbnail every
    10 s): the step's item keeps a count and a key, GET /jobs/{id} counts them by kind."""
    from reelscope.artifacts import dumps

    job_id = "f" * 32
    cloud.store.create_job(job_id, {"bucket": "b", "key": "uploads/hours.mp4", "size": 1, "version": "v"}, job_id, "default")
    outputs = [{"path": f"evidence/{i:05d}-person.jpg", "kind": "evidence", "sha256": "0" * 64, "size_bytes": 90_000}
               for i in range(20_000)]
    cloud.store.start_step(job_id, "entities", 1)
    cloud.store.end_step(job_id, "entities", 12.5, outputs=outputs)
    item = cloud.store.table.client.get_item(TableName=cloud.store.table.name,
                                             Key={"PK": {"S": f"JOB#{job_id}"}, "SK": {"S": "STEP#entities"}})["Item"]
    assert len(json.dumps(item)) < 1000  # DynamoDB refuses items over 400 KB
    (record,) = cloud.store.steps(job_id).values()
    assert (record["output_count"], record["output_bytes"]) == (20_000, 20_000 * 90_000)
    assert cloud.store.step_outputs(record) == outputs

    manifest = pipeline.build_manifest({"file_name": "hours.mp4"}, {"entities": {"status": "SUCCEEDED"}}, outputs + [
        {"path": "report.json", "kind": "report", "sha256": "0" * 64, "size_bytes": 10}])
    cloud.store.put_json(f"jobs/{job_id}/manifest.json", dumps(manifest))
    cloud.store.update_job(job_id, status="SUCCEEDED", manifest_key=f"jobs/{job_id}/manifest.json")
    status, body = get(cloud, f"/jobs/{job_id}", "/jobs/{job_id}", {"job_id": job_id})
    assert status == 200 and len(json.dumps(body)) < 10_000
    assert body["artifacts"]["evidence"] == {"count": 20_000, "size_bytes": 20_000 * 90_000}
    assert list(body["links"]) == ["report.json"]
    status, page = get(cloud, f"/jobs/{job_id}/artifacts", "/jobs/{job_id}/artifacts", {"job_id": job_id},
                       query={"kind": "evidence", "limit": "500", "next": "19800"})
    assert [a["path"] for a in page["artifacts"]] == [o["path"] for o in outputs[19_800:]] and page["next"] is None


@pytest.fixture(scope="module")
def turns_job(cloud, media_dir, model_dir, fall_weights):
    """Two voices taking turns, through local mode: the job id."""
    video, _ = talk(media_dir, "api-turns", alternating([MAN, WOMAN]))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("REELSCOPE_MODEL_DIR", str(model_dir))
        env.setenv("REELSCOPE_YOLO_WEIGHTS", str(fall_weights))
        job_id = cloud.upload(video, "uploads/turns.mp4")["job_id"]
        assert cloud.wait(job_id, timeout_s=300)["status"] == "SUCCEEDED"
    return job_id


def test_speakers_named_by_the_analyst_reach_the_page_exports_and_search(cloud, turns_job, model_dir, fall_weights):
    """S2 named: the names in report.json, the CSV, the share link and the library; search
    filtered by speaker, by id or by name."""
    job_id = turns_job
    with pytest.MonkeyPatch.context() as env:
        env.setenv("REELSCOPE_MODEL_DIR", str(model_dir))
        env.setenv("REELSCOPE_YOLO_WEIGHTS", str(fall_weights))
        path, params = f"/jobs/{job_id}/speakers", {"job_id": job_id}

        def name(names: dict) -> tuple[int, dict]:
            return call(cloud, request("PUT", path, {"names": names}, resource="/jobs/{job_id}/speakers", params=params))

        assert get(cloud, f"/jobs/{job_id}", "/jobs/{job_id}", params)[1]["steps"]["speakers"]["summary"] == {
            "speakers": 2, "turns": 6}
        assert name({"S3": "Nobody"}) == (422, {"message": f"names: job {job_id} has S1-S2: no S3"})
        assert name({"S0": "x"})[0] == 422 and name({"S2": "a\nb"})[0] == 422
        status, body = name({"S2": "  Inspector   Lee "})
        assert (status, body["speaker_names"], body["run"]) == (200, {"S2": "Inspector Lee"}, 2)
        job = cloud.wait(job_id, timeout_s=300)
        assert job["status"] == "SUCCEEDED"
    steps = get(cloud, f"/jobs/{job_id}", "/jobs/{job_id}", params)[1]["steps"]
    assert all(step.get("reused") for name_, step in steps.items() if name_ != "probe")  # nothing ran again but probe
    report = cloud.store.get_json(f"jobs/{job_id}/report.json")
    assert [(v["id"], v["name"]) for v in report["speakers"]] == [("S1", "S1"), ("S2", "Inspector Lee")]
    csv = cloud.store.s3.get_object(Bucket=cloud.store.bucket, Key=f"jobs/{job_id}/transcript.csv")["Body"].read().decode()
    assert ',S2,Inspector Lee,en,"I saw it too' in csv
    listed = next(j for j in get(cloud, "/jobs")[1]["jobs"] if j["job_id"] == job_id)
    assert [v["name"] for v in listed["speakers"]] == ["S1", "Inspector Lee"] or \
        [v["name"] for v in listed["speakers"]] == ["Inspector Lee", "S1"]
    for who, said in (("inspector lee", {"S2"}), ("S1", {"S1"}), (None, {"S1", "S2"})):
        status, body = get(cloud, "/search", query={"q": "unit lights channel report", "job": job_id,
                                                    **({"speaker": who} if who else {})})
        assert status == 200 and {hit["speaker"] for hit in body["hits"]} == said, who
    status, body = call(cloud, request("POST", f"/jobs/{job_id}/shares", {}, resource="/jobs/{job_id}/shares",
                                       params=params))
    token = body["token"]
    shared = get(cloud, f"/s/{token}/report.json", "/s/{token}/report.json", {"token": token})[1]["report"]
    assert [v["name"] for v in shared["speakers"]] == ["S1", "Inspector Lee"]


def test_the_report_page_draws_a_lane_per_speaker_filters_and_renames(cloud, turns_job, model_dir, fall_weights):
    """Chromium at desktop and phone size: a lane per speaker with its turns, transcript lines named
    and coloured, the speaker filter, a rename saved from the page (which runs the job again)."""
    from pathlib import Path

    from playwright.sync_api import sync_playwright

    from reelscope.local.servers import ApiServer

    shots = Path(__file__).resolve().parents[2] / "test-output"
    shots.mkdir(exist_ok=True)
    with (pytest.MonkeyPatch.context() as env, ApiServer(cloud.runner) as api, sync_playwright() as playwright):
        env.setenv("REELSCOPE_MODEL_DIR", str(model_dir))
        env.setenv("REELSCOPE_YOLO_WEIGHTS", str(fall_weights))
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        page.goto(f"{api.url}/jobs/{turns_job}/report")
        page.locator(".range").first.wait_for()
        lanes = page.locator("#names div").all_inner_texts()[1:]
        assert lanes[:2] == ["S1", "Inspector Lee"]  # named by the test before
        assert page.locator(".range.S1").count() == page.locator(".range.S2").count() == 3
        assert page.locator(".segment .who").all_inner_texts() == ["S1", "Inspector Lee"] * 3
        page.select_option("#who", "S2")
        assert page.locator(".segment:visible").count() == 3
        page.locator("#people input").first.fill("Officer Park")
        page.click("#save-names")
        page.wait_for_function("document.getElementById('named').textContent.startsWith('Saved')")
        assert page.locator(".segment .who").first.inner_text() == "Officer Park"
        assert page.locator("#names div").all_inner_texts()[1:3] == ["Officer Park", "Inspector Lee"]
        page.screenshot(path=str(shots / "report-speakers.png"), full_page=True)
        phone = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
        phone.goto(f"{api.url}/jobs/{turns_job}/report")
        phone.locator(".range").first.wait_for()
        assert phone.evaluate("document.scrollingElement.scrollWidth") <= 390
        phone.screenshot(path=str(shots / "report-speakers-phone.png"), full_page=True)
        browser.close()
        assert cloud.wait(turns_job, timeout_s=300)["status"] == "SUCCEEDED"
    assert cloud.store.job(turns_job)["speaker_names"] == {"S1": "Officer Park", "S2": "Inspector Lee"}
