"""Ingest's reading of S3, SQS-wrapped and EventBridge events, and the job id rule."""

from __future__ import annotations

import json

from reelscope.jobs import uploaded_objects
from reelscope.store import job_id_for


def s3_record(key: str, size: int = 10, etag: str = "abc", version: str | None = None) -> dict:
    obj = {"key": key, "size": size, "eTag": etag}
    if version:
        obj["versionId"] = version
    return {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "media"}, "object": obj}}


def test_s3_notification_keys_are_decoded():
    event = {"Records": [s3_record("uploads/dir+one/%C3%BCn%C3%AF+c%C3%B6d%C3%A9+%2B+%26+clip.mp4")]}
    assert uploaded_objects(event) == [{"bucket": "media", "key": "uploads/dir one/ünï cödé + & clip.mp4",
                                        "size": 10, "version": "abc"}]


def test_sqs_wrapped_notification_and_test_event():
    body = json.dumps({"Records": [s3_record("uploads/a.mp4", version="v2")]})
    test_event = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"})
    event = {"Records": [{"eventSource": "aws:sqs", "body": body}, {"eventSource": "aws:sqs", "body": test_event}]}
    assert uploaded_objects(event) == [{"bucket": "media", "key": "uploads/a.mp4", "size": 10, "version": "v2"}]


def test_eventbridge_object_created():
    event = {"detail-type": "Object Created", "source": "aws.s3",
             "detail": {"bucket": {"name": "media"}, "object": {"key": "uploads/a b.mp4", "size": 5, "etag": "e1"}}}
    assert uploaded_objects(event) == [{"bucket": "media", "key": "uploads/a b.mp4", "size": 5, "version": "e1"}]


def test_job_id_is_stable_per_object_version():
    first = job_id_for("media", "uploads/a.mp4", "etag-1")
    assert first == job_id_for("media", "uploads/a.mp4", "etag-1")
    assert first != job_id_for("media", "uploads/a.mp4", "etag-2")  # a changed re-upload is a new job
    assert first != job_id_for("other", "uploads/a.mp4", "etag-1")
    assert len(first) == 32 and first.isalnum()
