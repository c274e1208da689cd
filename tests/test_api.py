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
