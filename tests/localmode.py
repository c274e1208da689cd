"""Helpers for tests that use local mode as a user does: `serve` running, files dropped by another S3 client."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import boto3

from reelscope.local.cloud import LocalCloud


@contextlib.contextmanager
def serving(cloud: LocalCloud) -> Iterator[list[str]]:
    """`serve` in a thread for the block; yields the lines it prints, as they come."""
    lines: list[str] = []
    stop = threading.Event()
    thread = threading.Thread(target=cloud.serve, args=(stop, lines.append))
    thread.start()
    try:
        yield lines
    finally:
        stop.set()
        thread.join()


def other_s3_client(cloud: LocalCloud):
    """A client of its own, as `aws --endpoint-url ... s3 cp` would be."""
    return boto3.session.Session(aws_access_key_id="local", aws_secret_access_key=cloud.secret).client(
        "s3", endpoint_url=cloud.endpoint, region_name="us-east-1")


def run(cloud, path, key) -> tuple[str, dict]:
    """Upload `path` as `key`; (its job id, the job once it has ended)."""
    result = cloud.upload(path, key)
    assert result["outcome"] == "started", result
    return result["job_id"], cloud.wait(result["job_id"], timeout_s=600)


def history(cloud, job_id) -> list[dict]:
    arn = f"{cloud.state_machine_arn.replace(':stateMachine:', ':execution:')}:{job_id}"
    return cloud.sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]


def entered(events) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]
