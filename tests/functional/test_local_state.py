"""Local mode's own life: its state folder across restarts and kills, `process` and `serve` as a
user runs them, an execution that escapes its catch. Each test runs a LocalCloud of its own (one
at a time in a process: moto's backends are global to it), so none runs beside another module's."""

from __future__ import annotations

import pytest

from reelscope.cli import main
from reelscope.errors import ReelscopeError
from reelscope.local.cloud import BUCKET, LocalCloud

from ..localmode import entered, history, other_s3_client, run, serving


def test_state_survives_a_restart(tmp_path, monkeypatch):
    broken = tmp_path / "notes.mp4"
    broken.write_text("not a video")
    with LocalCloud(tmp_path / "state") as first:
        job_id, _ = run(first, broken, "uploads/notes.mp4")
        first.store.create_job("f" * 32, {"bucket": BUCKET, "key": "uploads/x.mp4", "size": 1, "version": "v"}, "f" * 32,
                               "default")
    with LocalCloud(tmp_path / "state") as second:
        assert second.store.job(job_id)["status"] == "FAILED"
        assert second.s3.get_object(Bucket=BUCKET, Key="uploads/notes.mp4")["Body"].read() == b"not a video"
        interrupted = second.store.job("f" * 32)
        assert interrupted["status"] == "FAILED" and interrupted["error"].startswith("interrupted")
        assert second.deliver_uploads() == []  # restoring objects started nothing
        again = second.upload(broken, "uploads/notes.mp4")
        assert again == {**again, "job_id": job_id, "outcome": "duplicate"}


def test_a_kill_between_the_saved_files_leaves_no_item_naming_an_unsaved_object(tmp_path, monkeypatch):
    """A save replaces the objects' index and the items one after the other: killed between the two,
    the state folder must not hold an item whose object is missing (a resumed job then failed,
    NoSuchKey, on a step's outputs list)."""
    from reelscope.local import cloud as local_cloud

    key = "jobs/" + "e" * 32 + "/steps/ocr-outputs.json"
    with LocalCloud(tmp_path / "state") as first:
        first.save()
        first.s3.put_object(Bucket=BUCKET, Key=key, Body=b"[]")
        first.dynamodb.put_item(TableName=local_cloud.TABLE, Item={"PK": {"S": "JOB#" + "e" * 32}, "SK": {"S": "STEP#ocr"},
                                                                    "outputs_key": {"S": key}})
        written = local_cloud.write_json

        def killed_after_one(path, obj):
            monkeypatch.setattr(local_cloud, "write_json", lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
            return written(path, obj)

        monkeypatch.setattr(local_cloud, "write_json", killed_after_one)
        with pytest.raises(KeyboardInterrupt):
            first.save()
        monkeypatch.setattr(local_cloud, "write_json", lambda *_: None)  # the kill: no final save
    monkeypatch.undo()
    with LocalCloud(tmp_path / "state") as second:  # the newer objects, the older items
        assert second.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"[]"
        assert [i for i in second.dynamodb.scan(TableName=local_cloud.TABLE)["Items"] if i["SK"]["S"] == "STEP#ocr"] == []


def test_process_command(people_video, tmp_path, monkeypatch, capsys, model_dir, fall_weights):
    monkeypatch.setenv("REELSCOPE_MODEL_DIR", str(model_dir))
    monkeypatch.setenv("REELSCOPE_YOLO_WEIGHTS", str(fall_weights))
    monkeypatch.setenv("REELSCOPE_STATE_DIR", str(tmp_path / "state"))
    assert main(["process", str(people_video), "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert "status: SUCCEEDED" in printed and "artifacts exported to" in printed
    (exported,) = (tmp_path / "out").iterdir()
    assert (exported / "manifest.json").is_file() and (exported / "720p.mp4").is_file()

    empty = tmp_path / "empty.mp4"
    empty.touch()
    assert main(["process", str(empty), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.strip() == "reelscope: process: empty.mp4: empty object (0 bytes)"


def test_serve_starts_a_job_for_a_file_dropped_by_any_s3_client(tmp_path):
    import time

    def ended(lines: list[str]) -> list[str]:
        return [line for line in lines if ": FAILED: " in line]

    with LocalCloud(tmp_path / "state") as cloud, serving(cloud) as lines:
        client = other_s3_client(cloud)
        client.put_object(Bucket=BUCKET, Key="uploads/dropped.mp4", Body=b"not a video either")
        client.put_object(Bucket=BUCKET, Key="elsewhere/ignored.mp4", Body=b"x")
        deadline = time.monotonic() + 60
        while not ended(lines) and time.monotonic() < deadline:
            time.sleep(0.2)
        # A rerun asked through the API is followed to its end too.
        job_id = ended(lines)[0].split()[1].rstrip(":")
        rerun = cloud.api({
            "httpMethod": "POST", "path": f"/jobs/{job_id}/runs", "resource": "/jobs/{job_id}/runs",
            "pathParameters": {"job_id": job_id}, "headers": {}, "queryStringParameters": None, "body": None,
            "isBase64Encoded": False, "requestContext": {"stage": "local", "path": f"/jobs/{job_id}/runs"}})
        assert rerun["statusCode"] == 202, rerun
        while len(ended(lines)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
    assert len(ended(lines)) == 2, lines
    assert lines[0].startswith(f"reelscope local: S3 endpoint {cloud.endpoint}")
    started = [line for line in lines if line.startswith("uploads/dropped.mp4: started job ")]
    assert len(started) == 1
    job_id = started[0].rsplit(" ", 1)[1]
    assert f"job {job_id}: FAILED: dropped.mp4: not a readable media file" in "\n".join(lines)
    assert not any("elsewhere/" in line for line in lines)  # the notification filter keeps outputs out


# After that execution has ended, moto's thread for the Speech branch's batch:submitJob.sync task dies
# with "TypeError: '>' not supported between instances of 'dict' and 'int'" (moto 5.2's callback wait).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_an_execution_that_ends_without_its_catch_still_fails_its_job(tmp_path, monkeypatch, sample):
    """Without Detect's Catch, the error escapes the Parallel state (moto 5.2's interpreter then ends
    the execution with States.Runtime, which no Catch may take; in AWS the same happens on a timeout
    or a StopExecution). The execution-ended event marks the job FAILED, and leaves finished jobs alone."""
    import json

    from reelscope import definition as shared

    definition = json.loads(shared.DEFINITION.read_text())
    (vision,) = [b for b in definition["States"]["Analyze"]["Branches"] if "Detect" in b["States"]]
    del vision["States"]["Detect"]["Catch"]
    edited = tmp_path / "pipeline.asl.json"
    edited.write_text(json.dumps(definition))
    monkeypatch.setattr(shared, "DEFINITION", edited)
    monkeypatch.setenv("REELSCOPE_YOLO_WEIGHTS", "/nonexistent/weights.pt")
    with LocalCloud(tmp_path / "state") as cloud:
        job_id, job = run(cloud, sample, "uploads/uncaught.mp4")
        assert "MarkFailed" not in entered(history(cloud, job_id))
        assert job["status"] == "FAILED" and job["error"].startswith("execution failed: States.Runtime: ")

        ended = {"detail-type": "Step Functions Execution Status Change", "source": "aws.states",
                 "detail": {"name": job_id, "status": "TIMED_OUT", "error": None, "cause": None}}
        result, error = cloud.runner.invoke("mark_failed", ended)  # a second event changes nothing
        assert error is None and result["marked_failed"] is False
        assert cloud.store.job(job_id)["error"] == job["error"]
        unknown = {**ended, "detail": {**ended["detail"], "name": "f" * 32}}
        assert cloud.runner.invoke("mark_failed", unknown)[0]["marked_failed"] is False
        assert cloud.store.job("f" * 32) is None  # no item made up for an execution without a job


def test_a_second_local_mode_in_one_process_is_refused(tmp_path):
    """moto's backends are the process's: a second LocalCloud would reset the first's resources."""
    with LocalCloud(tmp_path / "first") as first:
        first.s3.put_object(Bucket=BUCKET, Key="notes/kept.txt", Body=b"kept")
        with pytest.raises(ReelscopeError, match="local mode already runs in this process"):
            LocalCloud(tmp_path / "second").__enter__()
        assert first.s3.get_object(Bucket=BUCKET, Key="notes/kept.txt")["Body"].read() == b"kept"
    with LocalCloud(tmp_path / "second") as second:  # the first closed: another may open
        assert second.s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0

