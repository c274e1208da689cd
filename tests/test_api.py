"""The API handler in local mode: a presigned POST really uploads and starts a job; job status; refusals."""

from __future__ import annotations

import json

import pytest
import requests

from reelscope.local import LocalCloud


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
    result, error = cloud.runner.invoke("api", event)
    assert error is None, error
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

    status, body = call(cloud, request("GET", f"/jobs/{result['job_id']}", resource="/jobs/{job_id}",
                                       params={"job_id": result["job_id"]}))
    assert status == 200
    assert body["job"]["status"] == "FAILED" and body["steps"]["probe"]["status"] == "FAILED"
    assert "PK" not in body["job"]


def test_refusals_name_the_field(cloud):
    status, body = call(cloud, request("POST", "/uploads", {"file_name": "notes.txt", "content_type": "text/plain"}))
    assert (status, body["message"]) == (422, "content_type: must start with video/, got 'text/plain'")
    status, body = call(cloud, request("POST", "/uploads", {"content_type": "video/mp4"}))
    assert (status, body["message"]) == (422, "file_name: required, a non-empty string")
    status, body = call(cloud, request("GET", "/jobs/" + "0" * 32, resource="/jobs/{job_id}", params={"job_id": "0" * 32}))
    assert (status, body["message"]) == (404, f"job {'0' * 32} not found")
    status, body = call(cloud, request("GET", "/jobs/nope", resource="/jobs/{job_id}", params={"job_id": "nope"}))
    assert status == 422 and body["message"].startswith("job_id:")


def test_share_links(cloud, people_video, monkeypatch, model_dir, fall_weights):
    import hashlib

    from reelscope.api import token_hash

    monkeypatch.setenv("REELSCOPE_MODEL_DIR", str(model_dir))
    monkeypatch.setenv("REELSCOPE_YOLO_WEIGHTS", str(fall_weights))
    (result,) = cloud.upload(people_video, "uploads/people.mp4")
    job_id = result["job_id"]
    assert cloud.wait(job_id, timeout_s=300)["status"] == "SUCCEEDED"
    shares = f"/jobs/{job_id}/shares"

    status, share = call(cloud, request("POST", shares, {"expires_in_s": 3600}, "/jobs/{job_id}/shares", {"job_id": job_id}))
    assert status == 201 and len(share["token"]) == 32 and share["path"] == f"/s/{share['token']}"
    item = cloud.store.share(token_hash(share["token"]))
    assert item["job_id"] == job_id and share["token"] not in json.dumps(item)  # only the hash is stored

    opened = request("GET", share["path"], resource="/s/{token}", params={"token": share["token"]})
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
    assert call(cloud, request("GET", "/s/" + "A" * 32, resource="/s/{token}", params={"token": "A" * 32})) == \
           (404, {"message": "share link not found"})

    revoke = request("DELETE", f"{shares}/{share['token']}", resource="/jobs/{job_id}/shares/{token}",
                     params={"job_id": job_id, "token": share["token"]})
    result_, error = cloud.runner.invoke("api", revoke)
    assert error is None and result_["statusCode"] == 204
    assert call(cloud, opened) == (410, {"message": "share link revoked"})

    cloud.store.put_share(token_hash("B" * 32), job_id, expires_at=1)  # expired long ago
    assert call(cloud, request("GET", "/s/" + "B" * 32, resource="/s/{token}", params={"token": "B" * 32})) == \
           (410, {"message": "share link expired"})
    assert call(cloud, request("POST", shares, {"expires_in_s": 5}, "/jobs/{job_id}/shares", {"job_id": job_id}))[0] == 422
    assert call(cloud, request("POST", f"/jobs/{other}/shares", {}, "/jobs/{job_id}/shares", {"job_id": other}))[0] == 404


@pytest.fixture
def video_server():
    import http.server
    import threading

    class Serve(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
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
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_url_ingest(cloud, video_server, monkeypatch):
    monkeypatch.setenv("REELSCOPE_FETCH_ALLOW_LOOPBACK", "true")  # the test server lives on loopback
    status, body = call(cloud, request("POST", "/ingest", {"url": f"{video_server}/clips/Harbor%20Cam.mp4"}))
    assert status == 202 and body["key"].startswith("uploads/") and body["key"].endswith("/Harbor_Cam.mp4")
    fetch_status = request("GET", body["status_path"], resource="/ingest/{fetch_id}", params={"fetch_id": body["fetch_id"]})
    status, record = call(cloud, fetch_status)
    assert (status, record["status"], record["size_bytes"]) == (200, "SUCCEEDED", 31)
    (started,) = [r for r in cloud.deliver_uploads() if r["key"] == body["key"]]  # the upload starts a job
    job = cloud.wait(started["job_id"], timeout_s=120)
    assert job["status"] == "FAILED" and "not a readable media file" in job["error"]

    monkeypatch.setenv("REELSCOPE_FETCH_ALLOW_LOOPBACK", "false")
    status, body = call(cloud, request("POST", "/ingest", {"url": f"{video_server}/clip.mp4"}))
    assert status == 202  # accepted; the fetch itself refuses the address
    status, record = call(cloud, request("GET", body["status_path"], resource="/ingest/{fetch_id}",
                                         params={"fetch_id": body["fetch_id"]}))
    assert (record["status"], record["error"]) == ("FAILED", "127.0.0.1 is a loopback address")
    assert "Contents" not in cloud.s3.list_objects_v2(Bucket="reelscope-media", Prefix=body["key"])

    assert call(cloud, request("POST", "/ingest", {"url": "file:///etc/passwd"}))[0] == 422
    assert call(cloud, request("POST", "/ingest", {}))[0] == 422
    assert call(cloud, request("GET", "/ingest/" + "0" * 32, resource="/ingest/{fetch_id}",
                               params={"fetch_id": "0" * 32}))[0] == 404
