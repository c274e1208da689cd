"""The AWS calls each Lambda function and the Batch jobs make, recorded while local mode runs them:
the IAM action each call needs and the resource it touches, named as in the deployment's policies.

TaskRunner runs every function and Batch job in this process and says who is acting
(`acting`); every call of every client, whatever its session, goes through botocore's
BaseClient._make_api_call with its parameters, where it is recorded. Calls made while nobody acts (local mode's own, the state
machine's interpreter, a test's) are not recorded: the state machine's role is judged from the
definition itself. boto3's transfer threads carry the caller's context while recording, so a
multipart upload counts for the function that asked for it. A presigned POST is authorized with
its signer's permissions when the browser sends it: the S3 gate records it as the api's (`signed`).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import contextvars
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from botocore.client import BaseClient

from reelscope.local.names import ACCOUNT, REGION

_acting: contextvars.ContextVar[str | None] = contextvars.ContextVar("reelscope_acting", default=None)

# API operation -> the IAM actions it needs (one action when the names agree: service:Operation).
ACTIONS = {
    ("s3", "HeadObject"): ("s3:GetObject",),
    ("s3", "CreateMultipartUpload"): ("s3:PutObject",),
    ("s3", "UploadPart"): ("s3:PutObject",),
    ("s3", "CompleteMultipartUpload"): ("s3:PutObject",),
    ("s3", "ListObjectsV2"): ("s3:ListBucket",),
    ("s3", "ListObjectVersions"): ("s3:ListBucketVersions",),
    ("s3", "DeleteObjects"): ("s3:DeleteObjectVersion",),  # the store deletes versions, each named
    ("lambda", "Invoke"): ("lambda:InvokeFunction",),
}
SERVICE_PREFIX = {"stepfunctions": "states"}


@dataclass(frozen=True)
class Call:
    principal: str  # a function's name (functions/NAME), or batch_job
    action: str  # s3:GetObject
    resource: str  # the ARN it touches


@contextlib.contextmanager
def acting(principal: str) -> Iterator[None]:
    """The calls made inside (in this context) are `principal`'s."""
    token = _acting.set(principal)
    try:
        yield
    finally:
        _acting.reset(token)


def resources(service: str, params: dict) -> list[str]:
    """The ARNs a call's parameters name, in the deployment's form."""
    if service == "s3":
        bucket, key = params.get("Bucket", ""), params.get("Key")
        if "Delete" in params:  # DeleteObjects: IAM judges each object it names
            return [f"arn:aws:s3:::{bucket}/{o['Key']}" for o in params["Delete"]["Objects"]]
        return [f"arn:aws:s3:::{bucket}/{key}" if key is not None else f"arn:aws:s3:::{bucket}"]
    if service == "dynamodb":
        tables = [params["TableName"]] if "TableName" in params else list(params.get("RequestItems", {}))
        index = f"/index/{params['IndexName']}" if params.get("IndexName") else ""
        return [f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}{index}" for table in tables]
    if service == "stepfunctions":
        return [params.get("stateMachineArn") or params.get("executionArn", "*")]
    if service == "lambda":
        name = params["FunctionName"]
        return [name if name.startswith("arn:") else f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"]
    return ["*"]


_active: set[CallRecorder] = set()


def signed(principal: str, action: str, resource: str) -> None:
    """A request S3 authorizes with `principal`'s permissions though someone else sends it (a presigned POST)."""
    for recorder in list(_active):
        with recorder._lock:
            recorder.calls.add(Call(principal, action, resource))


class CallRecorder:
    """Records the calls made by whoever is `acting`, while installed (a context manager)."""

    def __init__(self) -> None:
        self.calls: set[Call] = set()
        self._lock = threading.Lock()
        self._submit = self._call = None

    def _record(self, service: str, operation: str, params: dict) -> None:
        principal = _acting.get()
        if principal is None:
            return
        actions = ACTIONS.get((service, operation)) or (f"{SERVICE_PREFIX.get(service, service)}:{operation}",)
        with self._lock:
            self.calls |= {Call(principal, action, arn) for action in actions for arn in resources(service, params)}

    def __enter__(self) -> CallRecorder:
        self._call = call = BaseClient._make_api_call

        def recorded(client, operation: str, params: dict):
            self._record(client.meta.service_model.service_name, operation, params)
            return call(client, operation, params)

        BaseClient._make_api_call = recorded
        self._submit = submit = concurrent.futures.ThreadPoolExecutor.submit

        def in_context(executor, fn, /, *args, **kwargs):  # s3transfer's threads: the caller's context
            return submit(executor, contextvars.copy_context().run, fn, *args, **kwargs)

        concurrent.futures.ThreadPoolExecutor.submit = in_context
        _active.add(self)
        return self

    def __exit__(self, *_) -> None:
        _active.discard(self)
        BaseClient._make_api_call = self._call
        concurrent.futures.ThreadPoolExecutor.submit = self._submit
