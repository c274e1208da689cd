"""Ingest's reading of S3 and SQS-wrapped notifications, and the job id rule."""

from __future__ import annotations

import json

from reelscope.cloud.jobs import execution_name, job_of_execution, uploaded_objects
from reelscope.store import job_id_for


def s3_record(key: str, size: int = 10, etag: str = "abc", version: str | None = None,
              event_name: str = "ObjectCreated:Put") -> dict:
    obj = {"key": key, "size": size, "eTag": etag}
    if version:
        obj["versionId"] = version
    return {"eventName": event_name, "s3": {"bucket": {"name": "media"}, "object": obj}}


def test_s3_notification_keys_are_decoded():
    event = {"Records": [s3_record("uploads/dir+one/%C3%BCn%C3%AF+c%C3%B6d%C3%A9+%2B+%26+clip.mp4")]}
    assert uploaded_objects(event) == [{"bucket": "media", "key": "uploads/dir one/ünï cödé + & clip.mp4",
                                        "size": 10, "etag": "abc", "version": "abc"}]


def test_sqs_wrapped_notification_and_test_event():
    body = json.dumps({"Records": [s3_record("uploads/a.mp4", version="v2")]})
    test_event = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"})
    event = {"Records": [{"eventSource": "aws:sqs", "body": body}, {"eventSource": "aws:sqs", "body": test_event}]}
    assert uploaded_objects(event) == [{"bucket": "media", "key": "uploads/a.mp4", "size": 10, "etag": "abc",
                                        "version": "v2"}]


def test_a_multipart_upload_announced_twice_is_one_object():
    """moto announces a multipart upload as Put and as CompleteMultipartUpload; S3 may deliver any event twice."""
    put = s3_record("uploads/big.mp4", size=20 << 20, etag="42473c89-3")
    complete = s3_record("uploads/big.mp4", size=20 << 20, etag="42473c89-3",
                         event_name="ObjectCreated:CompleteMultipartUpload")
    event = {"Records": [{"eventSource": "aws:sqs", "body": json.dumps({"Records": [put]})},
                         {"eventSource": "aws:sqs", "body": json.dumps({"Records": [complete, complete]})}]}
    assert [o["key"] for o in uploaded_objects(event)] == ["uploads/big.mp4"]
    changed = s3_record("uploads/big.mp4", etag="other-3")
    assert len(uploaded_objects({"Records": [put, changed]})) == 2  # other bytes at the same key: two objects


def test_job_id_is_stable_per_content():
    first = job_id_for("media", "uploads/a.mp4", "etag-1")
    assert first == job_id_for("media", "uploads/a.mp4", "etag-1")
    assert first != job_id_for("media", "uploads/a.mp4", "etag-2")  # a changed re-upload is a new job
    assert first != job_id_for("other", "uploads/a.mp4", "etag-1")
    assert len(first) == 32 and first.isalnum()


def test_execution_names_carry_the_job_and_the_run():
    job_id = job_id_for("media", "uploads/a.mp4", "etag-1")
    assert execution_name(job_id, 1) == job_id  # the first run keeps the name it always had
    assert execution_name(job_id, 3) == f"{job_id}-run3"
    assert {job_of_execution(execution_name(job_id, run)) for run in (1, 2, 3)} == {job_id}


def test_serve_says_what_became_of_each_upload():
    from reelscope.local.cloud import describe_outcome

    base = {"key": "uploads/a.mp4", "job_id": "f" * 32}
    assert describe_outcome({**base, "outcome": "started"}) == f"uploads/a.mp4: started job {'f' * 32}"
    assert describe_outcome({**base, "outcome": "rerun"}) == f"uploads/a.mp4: rerun job {'f' * 32}"
    assert describe_outcome({**base, "outcome": "duplicate", "status": "RUNNING"}) == \
        f"uploads/a.mp4: job {'f' * 32} already running"
    assert describe_outcome({**base, "outcome": "duplicate", "status": "SUCCEEDED"}) == (
        f"uploads/a.mp4: processed before, job {'f' * 32} SUCCEEDED (upload it with metadata reelscope-rerun=<new "
        "value> to run it again)")
    assert describe_outcome({"key": "uploads/e.mp4", "outcome": "ignored", "reason": "empty object (0 bytes)"}) == \
        "uploads/e.mp4: ignored (empty object (0 bytes))"
