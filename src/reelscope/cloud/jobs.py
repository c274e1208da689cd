"""A job in the cloud: ingest an upload, run steps where the state machine puts them (Lambda,
Batch, or local mode's stand-ins), index the results, record a failure.

A step reads its inputs from S3 into a scratch folder, runs the same stage function as
`reelscope analyze`, uploads what it published under jobs/{job_id}/ and records itself in
DynamoDB. Only small JSON (ids, keys, a route, a status) goes back to the state machine.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from urllib.parse import unquote_plus

from reelscope import integrity
from reelscope.access import audit
from reelscope.access.roles import case_of, case_of_key
from reelscope.analysis import pipeline, reports
from reelscope.artifacts import describe_artifact, dumps, read_json, sha256_file
from reelscope.cloud import eta
from reelscope.cloud.fetch import Pace, open_video
from reelscope.errors import BadNames, FetchRefused, NotFound, ReelscopeError, StepSkipped, error_message
from reelscope.search import engine as search_engine
from reelscope.search import index as search
from reelscope.settings import Settings
from reelscope.status import FINISHED, UNFINISHED, Status
from reelscope.store import Store, artifact_key, job_id_for, now, shared_store

UPLOAD_PREFIX = "uploads/"


def local_source(workdir: Path, key: str) -> Path:
    """Where a step keeps the uploaded object: its own base name, never a path from the key."""
    name = PurePosixPath(key).name
    return workdir / "input" / (name if name not in ("", ".", "..") else "source")


def _delivered(step: str, names: list[str], statuses: dict, records: dict, run: int) -> bool:
    """Whether `step`'s outputs are there for this run: made or reused by this task (`names`, their
    `statuses` so far) or by a task before it (its record counts for this `run`); probe's always are."""
    if step == "probe":
        return True
    if step in names:
        return statuses.get(step, {}).get("status") == Status.SUCCEEDED
    record = records.get(step, {})
    return record.get("status") == Status.SUCCEEDED and int(record.get("run", 1)) == run


def run_steps(names: list[str], job_id: str, key: str, settings: Settings, store: Store | None = None,
              on_done: Callable[[Path, Path], None] | None = None) -> list[dict]:
    """Run steps in order in one scratch folder (a Batch job runs a branch). A step that succeeded
    in an earlier run of the job with the same fingerprint (code and settings: the upload is the
    job's) is reused, not run: a job interrupted part-way resumes where it stopped. A failed step
    is recorded and the steps that need it are not run (the index step marks them skipped); the
    others still run. Then the first failure is raised: the state machine's Catch decides what
    happens next. `on_done(video, out)` runs after the last step, while the scratch folder exists."""
    store = store or shared_store(settings.bucket, settings.table)
    run = int((store.job(job_id) or {}).get("run", 1))
    records = store.steps(job_id)
    results, statuses, failures = [], {}, []
    with tempfile.TemporaryDirectory(prefix="reelscope-") as tmp:
        work = Path(tmp)
        out = work / "out"
        out.mkdir()
        video = local_source(work, key)
        have: set[str] = set()

        def delivered(step: str) -> bool:
            return _delivered(step, names, statuses, records, run)

        def bring(relatives) -> None:
            for relative in relatives:
                if relative not in have:
                    store.download(artifact_key(job_id, relative), out / relative)
                    have.add(relative)

        for name in names:
            if pipeline.blocked_by(name, statuses):
                statuses[name] = {"status": Status.SKIPPED}
                continue
            fed_by = tuple(step for step in pipeline.FEEDS[name] if delivered(step))
            fingerprint = pipeline.step_fingerprint(name, settings, fed_by)
            earlier = records.get(name, {})
            if name in pipeline.REUSABLE and earlier.get("status") in (Status.SUCCEEDED, Status.SKIPPED) \
                    and earlier.get("fingerprint") == fingerprint:  # made, or chosen not to run, by the same code and settings
                store.reuse_step(job_id, name, run)
                statuses[name] = {"status": earlier["status"]}
                # What the steps after it here read of its outputs (never the heavy ones).
                bring(sorted(pipeline.READ_BY_LATER & {o["path"] for o in store.step_outputs(earlier)}))
                results.append({"step": name, "outputs": earlier.get("output_count", 0), "reused": True})
                continue
            if name in pipeline.NEEDS_VIDEO and not video.exists():
                store.download(key, video)
            bring(f for f in pipeline.STEP_READS[name] if delivered(pipeline.WRITTEN_BY[f]))
            store.start_step(job_id, name, run)
            started = time.perf_counter()
            try:
                published = pipeline.STAGES[name](video, out, settings)
                outputs = [describe_artifact(out, relative) for relative in published]
                for output in outputs:
                    store.upload(out / output["path"], artifact_key(job_id, output["path"]))
            except StepSkipped as why:
                store.end_step(job_id, name, time.perf_counter() - started, error=str(why), skipped=True,
                               fingerprint=fingerprint)
                statuses[name] = {"status": Status.SKIPPED}
                continue
            except Exception as err:
                store.end_step(job_id, name, time.perf_counter() - started, error=error_message(err))
                statuses[name] = {"status": Status.FAILED}
                failures.append(err)
                continue
            store.end_step(job_id, name, time.perf_counter() - started, outputs=outputs,
                           summary=pipeline.step_summary(name, out), fingerprint=fingerprint)
            statuses[name] = {"status": Status.SUCCEEDED}
            have.update(published)
            results.append({"step": name, "outputs": len(outputs)})
        if failures:
            raise failures[0]
        if on_done:
            on_done(video, out)
    return results


def probe_job(job_id: str, key: str, settings: Settings) -> dict:
    """Probe, then choose where renditions are made: Lambda for short/small media, Batch otherwise."""
    store = shared_store(settings.bucket, settings.table)
    facts: dict = {}

    def record(video: Path, out: Path) -> None:
        facts.update(read_json(out / "media.json"))
        store.update_job(job_id, status=Status.RUNNING, media=facts, source_sha256=sha256_file(video),
                         source_file_name=video.name)

    run_steps(["probe"], job_id, key, settings, store, on_done=record)
    fits_lambda = (facts["duration_s"] <= settings.lambda_downscale_max_s
                   and facts["size_bytes"] <= settings.lambda_downscale_max_bytes)
    return {"duration_s": facts["duration_s"], "size_bytes": facts["size_bytes"], "has_audio": facts["has_audio"],
            "renditions_route": "lambda" if fits_lambda else "batch"}


# ---------------------------------------------------------------- ingest

def uploaded_objects(event: dict) -> list[dict]:
    """Objects named by an S3 notification, direct or wrapped in SQS, each once: S3 may deliver an
    event twice, and some S3 implementations announce a multipart upload twice (Put, then
    CompleteMultipartUpload)."""
    objects = []
    for record in event.get("Records", []):
        if "body" in record:  # SQS message carrying an S3 notification
            objects += uploaded_objects(json.loads(record["body"]))
        elif record.get("eventName", "").startswith("ObjectCreated"):
            s3 = record["s3"]
            obj = s3["object"]
            etag = obj.get("eTag", "").strip('"')
            objects.append({"bucket": s3["bucket"]["name"], "key": unquote_plus(obj["key"]), "size": obj.get("size", 0),
                            "etag": etag, "version": obj.get("versionId") or etag})
    unique = {(o["bucket"], o["key"], o["etag"]): o for o in objects}
    return list(unique.values())


RERUN_METADATA = "reelscope-rerun"  # S3 user metadata: a new value on an upload runs its job again
UPLOADED_BY = "x-amz-meta-uploaded-by"  # the presigned POST's field: who uploaded, signed into the form



class JobBusy(ReelscopeError):
    """A job cannot be run again while it runs."""


def execution_name(job_id: str, run: int) -> str:
    """Executions are named by their job id, and `{job_id}-run{n}` from the second run on
    (a name is never used twice in a state machine)."""
    return job_id if run == 1 else f"{job_id}-run{run}"


def job_of_execution(name: str) -> str:
    return name.split("-", 1)[0]


def _start_execution(sfn, settings: Settings, job_id: str, name: str, source: dict) -> None:
    """Start the named execution; one of that name that exists already (running or ended) is left as it is."""
    try:
        sfn.start_execution(stateMachineArn=settings.state_machine_arn, name=name,
                            input=json.dumps({"job_id": job_id, "bucket": source["bucket"], "key": source["key"]}))
    except sfn.exceptions.ExecutionAlreadyExists:
        pass


def rerun(job_id: str, settings: Settings, sfn, store: Store | None = None, token: str = "") -> dict:
    """Run a finished job again: a new execution of the same definition on the same upload. Each
    step that succeeded before with the same code and settings is reused (run_steps), the others
    run; the artifacts are replaced as the new run publishes them, and until then the earlier
    report stays readable. Refused (JobBusy) while the job is queued or running."""
    store = store or shared_store(settings.bucket, settings.table)
    job = store.job(job_id)
    if job is None:
        raise NotFound(f"job {job_id} not found")
    run = int(job.get("run", 1)) + 1
    name = execution_name(job_id, run)
    # Conditional on a finished status: of two reruns asked at once, one wins, the other is refused.
    if not store.update_job(job_id, only_if_status=FINISHED, remove=("error", "finished_at"), status=Status.QUEUED,
                            run=run, execution_name=name, rerun_token=token):
        raise JobBusy(f"job {job_id} is {store.job(job_id)['status']}: it can run again once it has finished")
    _start_execution(sfn, settings, job_id, name, job["source"])
    return {"job_id": job_id, "run": run, "execution_name": name, "status": Status.QUEUED}


class CaseHeld(ReelscopeError):
    """A job of a case on hold: nothing of it may be deleted."""


def delete_job(job_id: str, settings: Settings, store: Store | None = None) -> dict:
    """Remove everything of a finished job: its search rows first (nothing finds a job half gone),
    every version of its artifacts and of its upload, then its items, the job's own last (a delete
    cut short can be asked again). The audit trail keeps that it was deleted, by whom; not what it held.
    Refused while it runs (JobBusy) and while its case is on hold (CaseHeld)."""
    store = store or shared_store(settings.bucket, settings.table)
    job = store.job(job_id)
    if job is None:
        raise NotFound(f"job {job_id} not found")
    if job["status"] in UNFINISHED:
        raise JobBusy(f"job {job_id} is {job['status']}: it can be deleted once it has finished")
    if store.case(case_of(job))["held"]:
        raise CaseHeld(f"case {case_of(job)} is on hold: its jobs cannot be deleted until an admin releases it")
    search_engine.remove_job(job_id)
    objects = store.delete_objects(artifact_key(job_id, ""))
    objects += store.delete_objects(job["source"]["key"], version=job["source"]["version"])
    items = store.delete_job_records(job_id)
    return {"job_id": job_id, "case_id": case_of(job), "objects_deleted": objects, "items_deleted": items,
            "file_name": job.get("source_file_name", "")}


LISTED_SPEAKERS = 6  # the job item names who talks most (the library shows them); report.json has them all


def name_speakers(job_id: str, names: dict[str, str], settings: Settings, sfn, store: Store | None = None) -> dict:
    """Keep the analyst's names for a job's speakers on the job's item (no step reads them, so no
    step runs again for them), then run the job again when it has finished: every step is reused
    and the index step makes the exports and search documents with the names. An empty name
    gives the id back. BadNames for an id the job did not find."""
    store = store or shared_store(settings.bucket, settings.table)
    job = store.job(job_id)
    if job is None:
        raise NotFound(f"job {job_id} not found")
    record = store.steps(job_id).get("speakers", {})
    found = int((record.get("summary") or {}).get("speakers", 0)) if record.get("status") == Status.SUCCEEDED else 0
    unknown = sorted(set(names) - {f"S{i}" for i in range(1, found + 1)}, key=lambda s: int(s[1:]))
    if unknown:
        has = f"S1-S{found}" if found > 1 else "S1" if found else "no speakers"
        raise BadNames(f"job {job_id} has {has}: no {', '.join(unknown)}")
    named = {**job.get("speaker_names", {}), **{k: " ".join(v.split()) for k, v in names.items()}}
    named = {k: v for k, v in sorted(named.items(), key=lambda kv: int(kv[0][1:])) if v}
    store.update_job(job_id, speaker_names=named)
    try:
        run = rerun(job_id, settings, sfn, store)["run"] if job["status"] in FINISHED else None
    except JobBusy:  # another run started meanwhile: its index step reads the names
        run = None
    return {"job_id": job_id, "speaker_names": named, "run": run}


def ingest(event: dict, settings: Settings, sfn) -> list[dict]:
    """Start one execution per new upload; say what happened to each object.

    The job id comes from bucket, key and ETag (the content's hash), so the same bytes uploaded
    again at the same key are the same job: `duplicate`, its result kept. An upload whose user
    metadata `reelscope-rerun` carries a value the job has not seen runs a finished job again
    (`rerun`). A job left QUEUED by a delivery that died before starting its execution is started."""
    results = []
    for obj in uploaded_objects(event):
        if not obj["key"].startswith(UPLOAD_PREFIX):
            results.append({**obj, "outcome": "ignored", "reason": f"outside {UPLOAD_PREFIX}"})
            continue
        if not obj["size"]:
            results.append({**obj, "outcome": "ignored", "reason": "empty object (0 bytes)"})
            continue
        job_id = job_id_for(obj["bucket"], obj["key"], obj["etag"])
        store = shared_store(obj["bucket"], settings.table)
        source = {k: obj[k] for k in ("bucket", "key", "size", "version")}
        if store.create_job(job_id, source, job_id, case_of_key(obj["key"])):
            _start_execution(sfn, settings, job_id, job_id, source)
            if settings.audit_table:  # the job's trail starts with who uploaded it (a direct S3 put: "s3")
                uploader = store.object_metadata(obj["key"]).get(UPLOADED_BY.removeprefix("x-amz-meta-"), "s3")
                audit.record(settings, "job-created", uploader, job_id=job_id, case=case_of_key(obj["key"]),
                             detail={k: obj[k] for k in ("key", "size", "etag")})
            results.append({**obj, "job_id": job_id, "outcome": "started"})
            continue
        job = store.job(job_id)
        # The upload's metadata matters only to a finished job: no HEAD request for the others.
        token = store.object_metadata(obj["key"]).get(RERUN_METADATA, "") if job["status"] in FINISHED else ""
        if token and token != job.get("rerun_token"):
            try:
                results.append({**obj, **rerun(job_id, settings, sfn, store, token), "outcome": "rerun"})
                continue
            except JobBusy:  # another delivery of the same upload won the race
                job = store.job(job_id)
        elif job["status"] == Status.QUEUED:
            _start_execution(sfn, settings, job_id, job.get("execution_name", job_id), source)
        results.append({**obj, "job_id": job_id, "outcome": "duplicate", "status": job["status"]})
    return results


def fetch_url(fetch_id: str, url: str, key: str, settings: Settings) -> dict:
    """Stream a URL's video into the bucket under uploads/ (the upload then starts a job).
    The outcome is recorded on the fetch item: SUCCEEDED with the size, or FAILED with the reason."""
    store = shared_store(settings.bucket, settings.table)
    try:
        pace = Pace(settings.fetch_deadline_s, settings.fetch_min_bytes_per_s, settings.fetch_rate_grace_s)
        fetched = open_video(url, settings.max_bytes, allow_loopback=settings.fetch_allow_loopback, pace=pace)
        size = store.upload_stream(fetched.chunks, key, fetched.content_type)
        if size == 0:
            store.s3.delete_object(Bucket=store.bucket, Key=key)
            raise FetchRefused(f"{url[:200]}: empty body")
    except FetchRefused as err:  # final: Lambda's retries of an asynchronous invoke would refetch in vain
        store.end_fetch(fetch_id, error=str(err))
        return {"fetch_id": fetch_id, "key": key, "error": str(err)}
    except Exception as err:  # raised again: Lambda retries it (twice), the record follows the last try
        store.end_fetch(fetch_id, error=error_message(err))
        raise
    store.end_fetch(fetch_id, size_bytes=size)
    return {"fetch_id": fetch_id, "key": key, "size_bytes": size}


# ---------------------------------------------------------------- index and failure

def index_job(job_id: str, branches: list[dict], settings: Settings) -> dict:
    """Step statuses from their records (a branch that crashed before recording takes the branch
    error), the manifest of every delivered artifact, the job summary. Returns the final status."""
    store = shared_store(settings.bucket, settings.table)
    job = store.job(job_id)
    records = store.steps(job_id, run=int(job.get("run", 1)))
    steps = {"probe": {"status": Status.SUCCEEDED}}
    for branch in branches:
        for name in pipeline.BRANCHES[branch["branch"]]:
            record = records.get(name, {})
            if blocker := pipeline.blocked_by(name, steps):
                steps[name] = {"status": Status.SKIPPED, "error": f"{blocker} failed"}
            elif record.get("status") == Status.SUCCEEDED:
                steps[name] = pipeline.succeeded(record.get("summary"))
            elif record.get("status") == Status.SKIPPED:  # it chose not to run, and said why
                steps[name] = {"status": Status.SKIPPED, "error": record.get("error", "")}
            else:
                error = record.get("error") if record.get("status") == Status.FAILED else None
                steps[name] = {"status": Status.FAILED, "error": error or failure_reason(branch)}
    artifacts = [output for name, record in records.items() if steps.get(name, {}).get("status") == Status.SUCCEEDED
                 for output in store.step_outputs(record)]
    source = {"file_name": job["source_file_name"], "size_bytes": job["source"]["size"], "sha256": job["source_sha256"],
              "job_id": job_id}
    with tempfile.TemporaryDirectory(prefix="reelscope-index-") as tmp:
        # Only what the exports read: no renditions, no detections or frame signal (megabytes for an
        # hour), of the pictures only those the PDF shows (bounded, however long the video).
        delivered = {output["path"] for output in artifacts}
        reads = {"media.json", *reports.STEP_ARTIFACTS.values()} & delivered
        for relative in sorted(reads):
            store.download(artifact_key(job_id, relative), Path(tmp) / relative)

        def fetch_pictures(paths: list[str]) -> None:
            for relative in sorted(set(paths) & delivered):
                store.download(artifact_key(job_id, relative), Path(tmp) / relative)

        names = job.get("speaker_names", {})
        for relative in pipeline.make_exports(Path(tmp), source, steps, fetch_pictures, names):
            store.upload(Path(tmp) / relative, artifact_key(job_id, relative))
            artifacts.append(describe_artifact(Path(tmp), relative))
        report = read_json(Path(tmp) / "report.json")
        indexed, vectors = search.index_documents(job_id, report, Path(tmp), job["created_at"], case_of(job))
        store.upload(Path(tmp) / vectors, artifact_key(job_id, vectors))
        artifacts.append(describe_artifact(Path(tmp), vectors))
    manifest = pipeline.build_manifest(source, steps, artifacts)
    text = dumps(manifest)
    store.put_json(artifact_key(job_id, integrity.MANIFEST), text)
    signed = integrity.sign_manifest(text, job_id, job["source_sha256"], integrity.signer(settings))
    store.put_json(artifact_key(job_id, integrity.SIGNATURE), dumps(signed))
    store.put_step_rates(eta.learn(store.step_rates(), records, float(job["media"]["duration_s"])))
    failed = [name for name, step in steps.items() if step["status"] == Status.FAILED]
    poster = next((artifact_key(job_id, a["path"]) for a in artifacts if a["kind"] == "poster"), None)
    talkers = sorted(report["speakers"], key=lambda v: -v["talk_time_s"])[:LISTED_SPEAKERS]
    store.update_job(job_id, manifest_key=artifact_key(job_id, "manifest.json"), failed_steps=failed, search_documents=indexed,
                     speakers=[{k: v[k] for k in ("id", "name", "talk_time_s")} for v in talkers],
                     steps_summary={name: step["status"] for name, step in steps.items()},
                     **({"poster_key": poster} if poster else {}), remove=() if poster else ("poster_key",))
    return {"status": manifest["status"], "failed_steps": failed}


def failure_reason(error: dict) -> str:
    """A readable sentence from a state machine error ({Error, Cause} or {error, cause})."""
    name = error.get("Error") or error.get("error") or "error"
    cause = error.get("Cause") or error.get("cause") or ""
    try:
        parsed = json.loads(cause)
    except (TypeError, ValueError):
        return f"{name}: {cause}" if cause else name
    if isinstance(parsed, dict):
        if "errorMessage" in parsed:  # a Lambda function's error
            return parsed["errorMessage"]
        if "statusReason" in parsed:  # a Batch job's description
            reason = parsed.get("container", {}).get("reason")
            return f"Batch job {parsed['status'].lower()}: {parsed['statusReason']}" + (f" ({reason})" if reason else "")
    return f"{name}: {cause}"


def mark_failed(job_id: str, error: dict, settings: Settings) -> dict:
    store = shared_store(settings.bucket, settings.table)
    reason = failure_reason(error)
    store.update_job(job_id, status=Status.FAILED, error=reason, finished_at=now())
    return {"status": Status.FAILED, "error": reason}


EXECUTION_STATUS_CHANGE = "Step Functions Execution Status Change"


def execution_ended(event: dict, settings: Settings) -> dict:
    """An execution that FAILED, TIMED_OUT or was ABORTED (EventBridge's status change event, or
    local mode's copy of it) where the definition could not mark its job: an error no Catch takes,
    the execution's own timeout, an operator's StopExecution. The job becomes FAILED with the
    execution's error; a job already finished (MarkFailed, Finalize) is left as it is."""
    detail = event["detail"]
    job_id = job_of_execution(detail["name"])
    store = shared_store(settings.bucket, settings.table)
    job = store.job(job_id)
    if job is None or job.get("execution_name", job_id) != detail["name"]:  # an earlier run's execution
        return {"job_id": job_id, "marked_failed": False}
    reason = f"execution {detail['status'].lower().replace('_', ' ')}"
    if detail.get("error") or detail.get("cause"):
        reason += ": " + failure_reason({"Error": detail.get("error"), "Cause": detail.get("cause")})
    changed = store.update_job(job_id, only_if_status=UNFINISHED, status=Status.FAILED, error=reason, finished_at=now())
    return {"job_id": job_id, "marked_failed": changed, "error": reason}
