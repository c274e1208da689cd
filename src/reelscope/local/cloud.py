"""Local mode: the deployed architecture on one machine, offline.

moto, serving on 127.0.0.1, plays S3, SQS, DynamoDB and Step Functions, and its interpreter
executes statemachine/pipeline.asl.json, the file the CDK app deploys; its Lambda and Batch tasks
run this project's own code in this process (tasks.py). Uploads reach the ingest handler through
an S3 notification to an SQS queue (S3 -> Lambda in AWS; moto delivers the former). Objects and
items are saved to a state folder (state.py) and restored at the next start. Names: names.py;
moto's costs corrected: moto_patches.py; the local API and the S3 gate: servers.py.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import socket
import threading
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import boto3

from reelscope import definition, integrity
from reelscope.access import audit
from reelscope.access.users import Users
from reelscope.analysis import warmup
from reelscope.artifacts import write_json
from reelscope.cloud import eta, jobs
from reelscope.errors import ReelscopeError, error_message
from reelscope.local import moto_patches
from reelscope.local.names import ACCESS_KEY, ACCOUNT, AUDIT_TABLE, BUCKET, MACHINE, QUEUE, REGION, TABLE, substitutions
from reelscope.local.servers import LOOPBACK_ADDRESSES, ApiServer, S3Gate, own_hosts, through_gateway
from reelscope.local.state import StateFolder, interrupted, owner_secret, with_case
from reelscope.local.tasks import TaskRunner
from reelscope.progress import Progress
from reelscope.search import engine
from reelscope.settings import Settings
from reelscope.status import UNFINISHED
from reelscope.store import Store, artifact_key, forget_shared_stores, shared_store


class _GatedMotoServer:
    """moto's server as moto's ThreadedMotoServer builds it, with the S3 gate (servers.S3Gate)
    in front of its application."""

    def __init__(self, port: int, page_origins: set[str], secret: str, bind: str, hosts: set[str], signed_only):
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        app = S3Gate(DomainDispatcherApplication(create_backend_app), port, secret, page_origins, hosts, signed_only)
        self.httpd = make_server(bind, port, app, threaded=True, request_handler=MotoRequestHandler)
        self.httpd.daemon_threads = True

    def start(self) -> None:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _free_port(bind: str) -> int:
    with socket.socket() as sock:
        sock.bind((bind, 0))
        return sock.getsockname()[1]


def _check_port_free(port: int, bind: str = "127.0.0.1") -> None:
    """moto's server thread only prints when its port is taken, and its start() then waits forever."""
    with socket.socket() as sock:
        # As the server itself binds: connections of a stopped server lingering in TIME_WAIT do not count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((bind, port))
        except OSError as err:
            raise ReelscopeError(f"S3 endpoint port {port} on {bind}: {err.strerror}; "
                                 "choose another with --port") from None


def public_host(bind: str) -> str:
    """The name links to this machine carry: the bound address, or this machine's name when bound to all."""
    return socket.getfqdn() if bind in ("0.0.0.0", "::") else f"[{bind}]" if ":" in bind else bind


# One LocalCloud open at a time in a process: moto's backends and os.environ are the process's, so
# a second would reset the first's bucket, table and state machine under its running jobs.
_open = threading.Lock()


class LocalCloud:
    """Start with `with LocalCloud(state_dir) as cloud:`; see the module doc."""

    def __init__(self, state_dir: Path, port: int = 0, bind: str = "127.0.0.1"):
        self.state_dir = Path(state_dir)
        self.port, self.bind, self.host = port, bind, public_host(bind)
        self.users = Users(self.state_dir)
        self.runner = TaskRunner()
        self.folder = StateFolder(self.state_dir)
        self.server = None
        self.page_origins: set[str] = set()  # the local API's origin while it serves: its pages may upload
        self._saving = threading.Lock()  # serve's job threads save when their job ends
        self._closing = threading.Event()
        self.save_every_s = Settings.from_env().state_save_every_s

    # ------------------------------------------------------------ lifecycle
    def __enter__(self) -> LocalCloud:
        if not _open.acquire(blocking=False):
            raise ReelscopeError("local mode already runs in this process (its S3, DynamoDB and Step Functions "
                                 "are the process's): close it before opening another")
        self._saved_env = dict(os.environ)
        try:
            self.folder.acquire()
            try:
                self._start()
            except BaseException:
                self._stop()
                raise
        except BaseException:
            _open.release()
            raise
        return self

    def _start(self) -> None:
        if self.bind not in LOOPBACK_ADDRESSES and not self.users.any():
            raise ReelscopeError(f"--bind {self.bind}: beyond this machine, local mode needs users (anyone on the network "
                             f"could read and change everything): add one with `reelscope users add NAME --role admin "
                             f"--state-dir {self.state_dir}`")
        if self.port:
            _check_port_free(self.port, self.bind)
        self.port = self.port or _free_port(self.bind)
        self.endpoint = f"http://{self.host}:{self.port}"
        self.secret = owner_secret(self.state_dir)
        # The hosted handlers see what Lambda would give them: credentials, region, resource names.
        os.environ.update({
            "MOTO_PORT": str(self.port), "AWS_ENDPOINT_URL": self.endpoint, "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": self.secret,
            "REELSCOPE_BUCKET": BUCKET, "REELSCOPE_TABLE": TABLE, "REELSCOPE_FETCH_FUNCTION": "reelscope-fetch",
            "REELSCOPE_AUDIT_TABLE": AUDIT_TABLE, "REELSCOPE_STATE_DIR": str(self.state_dir),
            # The search engine's tables live in the state folder as they are (no save, no restore).
            "REELSCOPE_SEARCH_URI": str(self.state_dir / "search"),
            "POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_TRACE_DISABLED": "true",
        })
        os.environ.pop("AWS_SESSION_TOKEN", None)
        boto3.setup_default_session()  # a default session made before keeps the credentials it read then
        os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "CRITICAL")  # errors reach the user through job records
        forget_shared_stores()  # clients made for another endpoint
        for noisy in ("werkzeug", "moto"):
            logging.getLogger(noisy).setLevel(logging.CRITICAL)
        moto_patches.install()
        hosts = own_hosts(self.port) | {f"{self.host}:{self.port}"}
        self.server = _GatedMotoServer(self.port, self.page_origins, self.secret, self.bind, hosts, self.users.any)
        self.server.start()
        config = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False},
                  "batch": {"use_docker": False}}
        # moto's backends are global to the process: start from empty ones.
        urllib.request.urlopen(urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST"))
        urllib.request.urlopen(urllib.request.Request(f"{self.endpoint}/moto-api/config", method="POST",
                                                      data=json.dumps(config).encode()))
        self.s3, self.sqs = boto3.client("s3"), boto3.client("sqs")
        self.dynamodb, self.sfn = boto3.client("dynamodb"), boto3.client("stepfunctions")
        self.runner.install()
        self._create_resources()
        self.store = shared_store(BUCKET, TABLE)
        self._saver = threading.Thread(target=self._save_while_running, daemon=True)
        self._saver.start()

    def __exit__(self, *_) -> None:
        try:
            self._closing.set()
            self.runner.close()
            self._saver.join()
            self.save(final=True)
        finally:
            self._stop()
            _open.release()

    def _stop(self) -> None:
        """What _start did, undone: the runner and the server stopped, the environment as it was,
        the state folder free. (Its saves are __exit__'s: a start that failed has nothing to save.)"""
        self.runner.uninstall()
        if self.server:
            self.server.stop()
        os.environ.clear()
        os.environ.update(self._saved_env)
        boto3.DEFAULT_SESSION = None
        forget_shared_stores()
        self.folder.release()

    def _create_resources(self) -> None:
        self.s3.create_bucket(Bucket=BUCKET)
        self.dynamodb.create_table(**definition.create_table_request(TABLE))
        self.dynamodb.create_table(**audit.create_table_request(AUDIT_TABLE))
        self._restore()  # before the notification exists: restored uploads must not start jobs again
        if (self.state_dir / "search").is_dir():  # tables of a search folder made before jobs had cases
            for name in (engine.DOCUMENTS, engine.CLOCKS):
                engine.upgraded(engine.open_table(name))
        self.queue_url = self.sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.s3.put_bucket_notification_configuration(Bucket=BUCKET, NotificationConfiguration={"QueueConfigurations": [{
            "QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"],
            "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "uploads/"}]}}}]})
        self.state_machine_arn = self.sfn.create_state_machine(
            name=MACHINE, definition=definition.render(substitutions()),
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/reelscope-pipeline")["stateMachineArn"]
        os.environ["REELSCOPE_STATE_MACHINE_ARN"] = self.state_machine_arn

    # ------------------------------------------------------------ state folder
    def save(self, final: bool = False) -> None:
        """Mirror the bucket's objects and the table's items into the state folder, so that a kill
        at any moment leaves the last complete save: object files are named by key and ETag and
        written whole before the index that names them is replaced (rename), and files no index
        names are deleted only after. `final`: this process is stopping, so a job still queued or
        running is saved FAILED (interrupted) rather than as running forever."""
        with self._saving:
            self._save(final)

    def _save(self, final: bool) -> None:
        # Items first: a step recorded as succeeded uploaded its outputs before, so they are listed below.
        items = [item for page in self.dynamodb.get_paginator("scan").paginate(TableName=TABLE) for item in page["Items"]]
        records = [item for page in self.dynamodb.get_paginator("scan").paginate(TableName=AUDIT_TABLE)
                   for item in page["Items"]]
        objects_dir = self.state_dir / "objects"
        objects_dir.mkdir(parents=True, exist_ok=True)
        index_path = self.state_dir / "objects.json"
        old = json.loads(index_path.read_text()) if index_path.exists() else {}
        index = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
            for obj in page.get("Contents", []):
                name = hashlib.sha256(f"{obj['Key']}\n{obj['ETag']}".encode()).hexdigest()
                saved = old.get(obj["Key"], {})
                if saved.get("file") == name and (objects_dir / name).exists():
                    content_type = saved["content_type"]  # unchanged since the last save: no request
                else:
                    partial = objects_dir / f".{name}.partial"
                    self.s3.download_file(BUCKET, obj["Key"], str(partial))
                    os.replace(partial, objects_dir / name)
                    content_type = self.s3.head_object(Bucket=BUCKET, Key=obj["Key"])["ContentType"]
                index[obj["Key"]] = {"file": name, "etag": obj["ETag"], "content_type": content_type}
        # The objects' index before the items: a kill between the two renames leaves the older items,
        # whose objects are all still listed, never new items naming objects the index lacks.
        write_json(index_path, index)
        write_json(self.state_dir / "items.json", [interrupted(item) for item in items] if final else items)
        write_json(self.state_dir / "audit.json", records)
        for gone in {p.name for p in objects_dir.iterdir()} - {meta["file"] for meta in index.values()}:
            (objects_dir / gone).unlink()

    def _save_while_running(self) -> None:
        """Save every state_save_every_s while a task runs: after a kill -9 the steps that had ended are
        in the saved state, and running the job again reuses them (cloud/jobs.py run_steps)."""
        while not self._closing.wait(self.save_every_s):
            if self.runner.busy():
                try:
                    self.save()
                except Exception as err:  # the next save tries again; the final save reports its own failure
                    logging.getLogger(__name__).warning("saving local state: %s", error_message(err))

    def _restore(self) -> None:
        index_path = self.state_dir / "objects.json"
        if index_path.exists():
            for key, meta in json.loads(index_path.read_text()).items():
                self.s3.upload_file(str(self.state_dir / "objects" / meta["file"]), BUCKET, key,
                                    ExtraArgs={"ContentType": meta["content_type"]})
        items_path = self.state_dir / "items.json"
        for item in json.loads(items_path.read_text()) if items_path.exists() else []:
            # A job saved while running lost its execution with the process that ran it (kill -9, a crash).
            self.dynamodb.put_item(TableName=TABLE, Item=with_case(interrupted(item)))
        audit_path = self.state_dir / "audit.json"
        for item in json.loads(audit_path.read_text()) if audit_path.exists() else []:
            self.dynamodb.put_item(TableName=AUDIT_TABLE, Item=item)

    # ------------------------------------------------------------ jobs
    def deliver_uploads(self, wait_s: int = 1) -> list[dict]:
        """Hand queued S3 notifications to the ingest handler (as the S3 -> Lambda trigger does)."""
        messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10,
                                            WaitTimeSeconds=wait_s).get("Messages", [])
        if not messages:
            return []
        event = {"Records": [{"eventSource": "aws:sqs", "body": message["Body"]} for message in messages]}
        result, error = self.runner.invoke("ingest", event)
        if error:
            raise ReelscopeError(f"ingest failed: {error['errorMessage']}")
        self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=[
            {"Id": str(i), "ReceiptHandle": message["ReceiptHandle"]} for i, message in enumerate(messages)])
        if result["objects"]:
            self.save()  # an upload and its new job survive a kill from here on
        return result["objects"]

    def upload(self, video: Path, key: str | None = None, rerun: bool = False) -> dict:
        """Put a file under uploads/ (multipart above 8 MiB, as every S3 client does) and deliver
        its notifications; returns ingest's outcome for it. `rerun`: a finished job of the same
        bytes runs again (the rerun metadata, as any S3 client can send it)."""
        key = key or f"uploads/{Path(video).name}"
        extra = {"Metadata": {jobs.RERUN_METADATA: uuid.uuid4().hex}} if rerun else {}
        self.s3.upload_file(str(video), BUCKET, key, ExtraArgs=extra)
        etag = self.s3.head_object(Bucket=BUCKET, Key=key)["ETag"].strip('"')
        for _ in range(50):
            # One outcome per object (ingest merges repeated notifications of one upload).
            if found := [r for r in self.deliver_uploads() if r["key"] == key and r["etag"] == etag]:
                return found[0]
        raise ReelscopeError(f"no notification arrived for {key}")

    def wait(self, job_id: str, progress: Progress | None = None, timeout_s: float | None = None) -> dict:
        """Block until the job's current execution ends; report each state as it is entered and left.
        Without timeout_s, how long is derived from the media's duration (wait_limit)."""
        progress = progress or Progress(enabled=False)
        name = self.store.job(job_id).get("execution_name", job_id)
        execution_arn = f"{self.state_machine_arn.replace(':stateMachine:', ':execution:')}:{name}"
        started, seen = time.monotonic(), 0
        told = started
        limit, checked = timeout_s or wait_limit(self.store.job(job_id)), started
        while True:
            status = self.sfn.describe_execution(executionArn=execution_arn)["status"]
            events = self.sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
            exited = False
            for event in events[seen:]:
                details = event.get("stateEnteredEventDetails") or event.get("stateExitedEventDetails")
                if details and event["type"].endswith("StateEntered"):
                    progress.say(f"  > {details['name']}")
                elif details:
                    progress.say(f"  < {details['name']}")
                    exited = True
            seen = len(events)
            if progress.enabled and status == "RUNNING" and (exited or time.monotonic() - told > ETA_EVERY_S):
                told = time.monotonic()
                job = self.store.job(job_id)
                if estimate := eta.progress(job, self.store.steps(job_id, run=int(job.get("run", 1))),
                                            self.store.step_rates()):
                    progress.say(f"    {estimate['steps_ended']} of {estimate['steps']} steps ended, "
                                 f"{eta.say_left(estimate['eta_s'])}")
            if status != "RUNNING":
                if status in ("FAILED", "TIMED_OUT", "ABORTED"):
                    self._execution_ended(execution_arn)
                return self.store.job(job_id)
            if not timeout_s and time.monotonic() - checked > 20:  # probe may have said how long the media is since
                limit, checked = wait_limit(self.store.job(job_id)), time.monotonic()
            if time.monotonic() - started > limit:
                raise ReelscopeError(f"job {job_id} still running after {limit:.0f} s")
            time.sleep(0.3)

    def _execution_ended(self, execution_arn: str) -> None:
        """What EventBridge hands the mark_failed function in AWS when an execution fails (moto sends no events)."""
        execution = self.sfn.describe_execution(executionArn=execution_arn)
        detail = {k: execution.get(k) for k in ("executionArn", "stateMachineArn", "name", "status", "error", "cause")}
        _, error = self.runner.invoke("mark_failed", {"source": "aws.states", "detail-type": jobs.EXECUTION_STATUS_CHANGE,
                                                      "detail": detail})
        if error:
            raise ReelscopeError(f"marking {detail['name']} failed: {error['errorMessage']}")

    def export(self, job_id: str, out_dir: Path) -> Path:
        """Download the job's manifest, its signature and every artifact it lists into out_dir/{job_id}/
        (files an earlier run of the job left behind are not part of its result): what
        `reelscope verify` checks."""
        target = Path(out_dir) / job_id
        manifest_key = artifact_key(job_id, integrity.MANIFEST)
        listed = [artifact_key(job_id, a["path"]) for a in self.store.get_json(manifest_key)["artifacts"]]
        for key in (*listed, manifest_key, artifact_key(job_id, integrity.SIGNATURE)):
            self.store.download(key, target / key.split("/", 2)[2])
        return target

    def serve(self, stop: threading.Event, say=print, api_port: int = 0) -> None:
        """Start a job for every object dropped under uploads/, and serve the API, until `stop` is set."""
        with ApiServer(self.runner, api_port, self.bind, self.host) as api, self._warming():
            self.page_origins.add(api.url)
            say(f"reelscope local: S3 endpoint {self.endpoint}, bucket {BUCKET}, state in {self.state_dir}")
            say(f"  library and reports: {api.url}/   API: {api.url}/jobs, {api.url}/openapi.json")
            people = self.users.list()
            say(f"  {len(people)} user{'s' if len(people) > 1 else ''}: sign in at {api.url}/auth/login" if people else
                "  no users: anyone on this machine may use it (`reelscope users add` to require sign-in)")
            say(f"  drop a video (the owner's keys): AWS_ACCESS_KEY_ID={ACCESS_KEY} AWS_SECRET_ACCESS_KEY={self.secret} "
                f"aws --endpoint-url {self.endpoint} s3 cp VIDEO s3://{BUCKET}/uploads/[CASE/]")
            followed: set[str] = set()
            while not stop.is_set():
                started = []
                for result in self.deliver_uploads():
                    say(describe_outcome(result))
                    if result["outcome"] in ("started", "rerun"):
                        started.append(result.get("execution_name", result["job_id"]))
                # Every execution of this process is followed to its end (reported, then saved), whoever
                # started it (an upload, a rerun asked through the API), and even if it ended already.
                executions = self.sfn.list_executions(stateMachineArn=self.state_machine_arn, maxResults=1000)
                for name in [*started, *(e["name"] for e in executions["executions"])]:
                    if name not in followed:
                        followed.add(name)
                        threading.Thread(target=self._report, args=(jobs.job_of_execution(name), say, api.url),
                                         daemon=True).start()

    @contextlib.contextmanager
    def _warming(self):
        """The models loaded in the background while serve waits for its first upload (it finds them
        ready); on the way out the load is let finish: the process must not exit while the model
        runtimes' native threads are starting (std::terminate, exit status -6)."""
        warming = threading.Thread(target=warmup.warm_models, args=(Settings.from_env(),), daemon=True)
        warming.start()
        try:
            yield
        finally:
            warming.join(timeout=WARM_UP_WAIT_S)

    def api(self, event: dict) -> dict:
        """One API request as API Gateway passes it on: the authorizer, then the api function."""
        return through_gateway(self.runner, event)

    def _report(self, job_id: str, say, api_url: str) -> None:
        try:
            job = self.wait(job_id)
        except Exception as err:
            if not self.runner.closing:  # when stopping, the saved state says what became of the job
                say(f"job {job_id}: cannot follow its execution: {error_message(err)}")
            return
        detail = job.get("error") or f"report at {api_url}/jobs/{job_id}/report"
        say(f"job {job_id}: {job['status']}: {detail}")
        self.save()


# How long a job may run locally before `wait` gives up on it: a floor for start-up, and per second of
# media eight times the 0.25x real time measured on 2 cores (docs/BENCHMARKS.md). The longest media
# allowed (settings.max_duration_s) is assumed until probe says.
WAIT_FLOOR_S = 1800.0
WARM_UP_WAIT_S = 120.0  # serve stopping: how long it waits for the model load it started (3.4 CPU s on 2 cores)
ETA_EVERY_S = 60.0  # `process` on a terminal: the estimate as each state ends, and at least this often
WAIT_PER_MEDIA_S = 2.0


def wait_limit(job: dict | None) -> float:
    duration = ((job or {}).get("media") or {}).get("duration_s") or Settings().max_duration_s
    return WAIT_FLOOR_S + WAIT_PER_MEDIA_S * float(duration)


def describe_outcome(result: dict) -> str:
    """One line for what ingest did with an upload."""
    if result["outcome"] == "ignored":
        return f"{result['key']}: ignored ({result['reason']})"
    if result["outcome"] == "duplicate" and result["status"] in UNFINISHED:  # a repeated notification
        return f"{result['key']}: job {result['job_id']} already {result['status'].lower()}"
    if result["outcome"] == "duplicate":
        return f"{result['key']}: processed before, job {result['job_id']} {result['status']} (upload it with " \
               f"metadata {jobs.RERUN_METADATA}=<new value> to run it again)"
    return f"{result['key']}: {result['outcome']} job {result['job_id']}"


def job_timings(store: Store, job_id: str) -> dict[str, float]:
    """Seconds of each step that ran in the job's last run (not those reused from an earlier one)."""
    run = int(store.job(job_id).get("run", 1))
    return {name: record.get("duration_s", 0.0) for name, record in store.steps(job_id, run=run).items()
            if not record.get("reused")}
