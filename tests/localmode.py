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
    return boto3.session.Session(aws_access_key_id="local", aws_secret_access_key="local").client(
        "s3", endpoint_url=cloud.endpoint, region_name="us-east-1")
