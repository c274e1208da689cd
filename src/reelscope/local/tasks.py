"""The state machine's Lambda and Batch tasks, run in this process: boto3 event hooks answer the
interpreter's lambda:Invoke and batch:SubmitJob / DescribeJobs calls with this project's own
handlers (functions/*/app.py) and Batch entrypoint (containers/gpu-batch/entrypoint.py)."""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import io
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import boto3
from botocore.awsrequest import AWSResponse
from botocore.response import StreamingBody

from reelscope.errors import ReelscopeError
from reelscope.local import calls
from reelscope.local.names import ACCOUNT, BATCH_DEFINITIONS, BATCH_ENTRYPOINT, FUNCTIONS, REGION


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _camel(value, key: str = ""):
    """boto3 names Batch parameters jobName/containerOverrides; the interpreter passes the ASL's
    JobName/ContainerOverrides (moto 5.2 bug). User-defined maps (Parameters, Tags) are kept."""
    if isinstance(value, dict):
        if key in ("parameters", "tags"):
            return value
        return {k[:1].lower() + k[1:]: _camel(v, k[:1].lower() + k[1:]) for k, v in value.items()}
    if isinstance(value, list):
        return [_camel(v) for v in value]
    return value


@dataclass
class LambdaContext:
    """What the Lambda runtime hands a handler, as far as Powertools reads it."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int = 3008
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 900_000


class TaskRunner:
    """Answers the interpreter's Lambda and Batch calls by running the project's code in-process."""

    OPERATIONS = ("lambda.Invoke", "batch.SubmitJob", "batch.DescribeJobs")

    def __init__(self):
        self.idle_handlers: dict[str, list] = {}
        self.batch_jobs: dict[str, dict] = {}
        self.entrypoint = None
        self.closing = False  # set on exit: no new task starts
        self._lock = threading.Lock()
        self._running = 0
        self._idle = threading.Condition()

    @contextlib.contextmanager
    def _task(self, what: str):
        with self._idle:
            if self.closing:
                raise ReelscopeError(f"local mode is stopping: {what} not started")
            self._running += 1
        try:
            yield
        finally:
            with self._idle:
                self._running -= 1
                self._idle.notify_all()

    def busy(self) -> bool:
        with self._idle:
            return self._running > 0

    def close(self) -> None:
        """Refuse new tasks (their executions fail fast), then wait until none runs. A branch still
        running must not meet interpreter shutdown inside torch: its threads abort the process
        ("terminate called without an active exception")."""
        with self._idle:
            self.closing = True
            while self._running:
                self._idle.wait(timeout=1.0)  # a timeout keeps the wait interruptible by Ctrl-C

    def install(self) -> None:
        if boto3.DEFAULT_SESSION is None:
            boto3.setup_default_session()
        events = boto3.DEFAULT_SESSION.events  # the interpreter's clients come from the default session
        for operation in self.OPERATIONS:
            events.register(f"before-parameter-build.{operation}", self._remember, unique_id=f"reelscope-p-{operation}")
            events.register(f"before-call.{operation}", self._answer, unique_id=f"reelscope-c-{operation}")

    def uninstall(self) -> None:
        if boto3.DEFAULT_SESSION is None:  # nothing was installed: local mode stopped while starting
            return
        events = boto3.DEFAULT_SESSION.events
        for operation in self.OPERATIONS:
            events.unregister(f"before-parameter-build.{operation}", unique_id=f"reelscope-p-{operation}")
            events.unregister(f"before-call.{operation}", unique_id=f"reelscope-c-{operation}")

    @contextlib.contextmanager
    def handler(self, name: str):
        """A loaded copy of functions/{name}/app.py that serves this one event, as a Lambda
        execution environment does: copies are reused, never shared by two events at once (the
        API's resolver keeps the current request on itself). Each mode instance loads its own:
        module-level clients follow its endpoint."""
        path = FUNCTIONS / name / "app.py"
        with self._lock:
            idle = self.idle_handlers.setdefault(name, [])
            handler = idle.pop() if idle else None
        if handler is None:
            if not path.is_file():
                raise ReelscopeError(f"no local runner for Lambda function {name!r}: {path} not found")
            handler = _load(path, f"reelscope_function_{name}").handler
        try:
            yield handler
        finally:
            with self._lock:
                self.idle_handlers[name].append(handler)

    def invoke(self, name: str, event: dict) -> tuple[dict | None, dict | None]:
        """(result, None) or (None, the Lambda runtime's error payload)."""
        arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:reelscope-{name}"
        try:
            with self._task(f"Lambda function {name}"), self.handler(name) as handler, calls.acting(name):
                return handler(event, LambdaContext(f"reelscope-{name}", arn)), None
        except Exception as err:
            return None, {"errorMessage": str(err), "errorType": type(err).__name__}

    def _remember(self, params, model, context, **_):
        if model.service_model.service_name == "batch":
            normalized = _camel(params)
            params.clear()
            params.update(normalized)
        context["reelscope_params"] = copy.deepcopy(params)

    def _answer(self, model, context, **_):
        params = context["reelscope_params"]
        if model.name == "Invoke":
            # An ARN from the state machine, or a plain name from the API's asynchronous invoke.
            name = params["FunctionName"].rsplit(":", 1)[-1].removeprefix("reelscope-")
            payload = json.loads(params.get("Payload") or b"{}")
            if params.get("InvocationType") == "Event":  # asynchronous, as Lambda queues it: 202 at once
                threading.Thread(target=self.invoke, args=(name, payload), daemon=True).start()
                return AWSResponse("local", 202, {}, None), {"StatusCode": 202, "Payload": StreamingBody(io.BytesIO(b""), 0)}
            result, error = self.invoke(name, payload)
            body = json.dumps(result if error is None else error).encode()
            parsed = {"StatusCode": 200, "ExecutedVersion": "$LATEST", "Payload": StreamingBody(io.BytesIO(body), len(body))}
            if error is not None:
                parsed["FunctionError"] = "Unhandled"
            return AWSResponse("local", 200, {}, None), parsed
        if model.name == "SubmitJob":
            return AWSResponse("local", 200, {}, None), self._submit(params)
        described = [self.batch_jobs[job_id] for job_id in params["jobs"] if job_id in self.batch_jobs]
        return AWSResponse("local", 200, {}, None), {"jobs": described}

    def _submit(self, params: dict) -> dict:
        if params["jobDefinition"] not in BATCH_DEFINITIONS:
            raise ReelscopeError(f"no local runner for Batch job definition {params['jobDefinition']!r}")
        with self._lock:
            if self.entrypoint is None:
                self.entrypoint = _load(BATCH_ENTRYPOINT, "reelscope_batch_entrypoint")
        command = params["containerOverrides"]["command"]
        started = int(time.time() * 1000)
        try:
            with self._task(f"Batch job {params['jobName']}"), calls.acting("batch_job"):
                exit_code = self.entrypoint.main(command)
        except SystemExit as exit_:  # argparse refusing the command line
            exit_code = exit_.code or 2
        except ReelscopeError:  # local mode stopping: the job is marked interrupted when state is saved
            exit_code = 1
        job_id = str(uuid.uuid4())
        self.batch_jobs[job_id] = {
            "jobId": job_id, "jobName": params["jobName"], "jobQueue": params["jobQueue"],
            "jobDefinition": params["jobDefinition"], "startedAt": started, "stoppedAt": int(time.time() * 1000),
            "status": "SUCCEEDED" if exit_code == 0 else "FAILED",
            "statusReason": "Essential container in task exited",
            "container": {"command": command, "exitCode": exit_code},
        }
        # The interpreter reads the submission as "JobId" (moto 5.2 again): answer in both casings.
        return {"jobId": job_id, "JobId": job_id, "jobName": params["jobName"],
                "jobArn": f"arn:aws:batch:{REGION}:{ACCOUNT}:job/{job_id}"}
