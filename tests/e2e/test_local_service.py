"""Local mode as a service: real-sized files, several jobs at once, the same video again, one
process per state folder, kill -9 and restart, a busy port. Real ffmpeg, Whisper and YOLO."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import ffmpeg
import pytest

from reelscope.analysis import detect, media, transcribe
from reelscope.cli import main
from reelscope.local.cloud import BUCKET, LocalCloud
from reelscope.settings import Settings

from ..localmode import other_s3_client, serving

MULTIPART_THRESHOLD = 8 * 1024 * 1024  # boto3's: every S3 client uploads bigger files in parts


@pytest.fixture(autouse=True)
def models_env(monkeypatch, model_dir, fall_weights):
    monkeypatch.setenv("REELSCOPE_MODEL_DIR", str(model_dir))
    monkeypatch.setenv("REELSCOPE_YOLO_WEIGHTS", str(fall_weights))


@pytest.fixture(scope="module")
def large_video(media_dir) -> Path:
    """4 s of 1280x720 noise at 24 Mbit/s, silent: about 12 MB, above the multipart threshold."""
    out = media_dir / "large.mp4"
    (ffmpeg.input("testsrc2=size=1280x720:rate=25:duration=4", f="lavfi").filter("noise", alls=60, allf="t")
     .output(str(out), vcodec="libx264", preset="ultrafast", pix_fmt="yuv420p", video_bitrate="24M", maxrate="24M",
             bufsize="8M", movflags="+faststart")
     .global_args("-loglevel", "error").run(overwrite_output=True))
    return out


def exported_job(printed: str) -> str:
    return re.search(r"job ([0-9a-f]{32}): artifacts exported to", printed).group(1)


def test_a_large_file_is_processed_then_shown_again_then_forced(large_video, tmp_path, monkeypatch, capsys):
    """Above 8 MiB the upload is multipart, and moto announces it twice (Put, CompleteMultipartUpload):
    one job. Running the same file again shows that job's result; --force runs it again, reusing
    the steps the same code and settings made."""
    assert large_video.stat().st_size > MULTIPART_THRESHOLD
    monkeypatch.setenv("REELSCOPE_STATE_DIR", str(tmp_path / "state"))
    command = ["process", str(large_video), "--out", str(tmp_path / "out")]
    assert main(command) == 0
    first = capsys.readouterr()
    job_id = exported_job(first.out)
    assert "status: SUCCEEDED" in first.out and first.err == ""

    assert main(command) == 0
    again = capsys.readouterr()
    assert exported_job(again.out) == job_id and "status: SUCCEEDED" in again.out
    assert again.err.startswith(f"large.mp4 was processed before (job {job_id}, SUCCEEDED, created ")
    assert again.err.rstrip().endswith("showing that result; --force runs it again")

    with LocalCloud(tmp_path / "state") as cloud:
        job = cloud.store.job(job_id)
        assert job["source"]["size"] == large_video.stat().st_size and job["source"]["version"].endswith("-2")
        first_steps = cloud.store.steps(job_id)
        # as an earlier reelscope, without shots and ocr (and without fingerprints on them), would have left it
        cloud.store.update_job(job_id, steps_summary={k: v for k, v in job["steps_summary"].items()
                                                       if k not in ("shots", "ocr")})
        for name in ("shots", "ocr"):
            cloud.store.table.update_item(Key={"PK": f"JOB#{job_id}", "SK": f"STEP#{name}"},
                                          UpdateExpression="REMOVE fingerprint")
    assert "run" not in job and job["execution_name"] == job_id
    assert main(command) == 0
    assert "SUCCEEDED, created " in (older := capsys.readouterr().err)
    assert ") by a reelscope without shots, ocr: showing that result; --force runs it again" in older

    assert main([*command, "--force"]) == 0
    forced = capsys.readouterr()
    assert exported_job(forced.out) == job_id and "status: SUCCEEDED" in forced.out
    # The same code and settings made the other steps: they are reused; shots and ocr run again.
    assert forced.err == (f"reused from an earlier run of job {job_id}: downscale, transcribe, speakers, translate, "
                          "subtitles, detect, tracks, entities\n")
    with LocalCloud(tmp_path / "state") as cloud:
        job = cloud.store.job(job_id)
        steps = cloud.store.steps(job_id)
    assert (job["status"], job["run"], job["execution_name"]) == ("SUCCEEDED", 2, f"{job_id}-run2")
    ran = {"probe", "shots", "ocr"}
    assert set(steps) == set(first_steps) and all(steps[n]["started_at"] > first_steps[n]["ended_at"] for n in ran)
    assert all(steps[n]["reused"] and steps[n]["started_at"] == first_steps[n]["started_at"] for n in set(steps) - ran)


@pytest.mark.e2e
def test_a_video_over_ten_minutes_takes_the_batch_renditions_route(tmp_path, media_dir, monkeypatch):
    long_video = media_dir / "long.mp4"
    (ffmpeg.input("testsrc2=size=160x90:rate=5:duration=630", f="lavfi")
     .output(str(long_video), vcodec="libx264", preset="ultrafast", pix_fmt="yuv420p")
     .global_args("-loglevel", "error").run(overwrite_output=True))
    monkeypatch.setenv("REELSCOPE_DETECT_FPS", "0.05")  # 32 frames: the route is under test, not the detector
    monkeypatch.setenv("REELSCOPE_OCR_FPS", "0.05")  # nor the reader
    with LocalCloud(tmp_path / "state") as cloud:
        result = cloud.upload(long_video)
        job = cloud.wait(result["job_id"], timeout_s=600)
        arn = f"{cloud.state_machine_arn.replace(':stateMachine:', ':execution:')}:{result['job_id']}"
        events = cloud.sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        renditions = cloud.store.get_json(f"jobs/{result['job_id']}/renditions.json")
        records, rates = cloud.store.steps(result["job_id"]), cloud.store.step_rates()
    # Index learned each step's rate from this job (the first here): its seconds less the start, per media second.
    assert rates == {name: round(max(float(r["duration_s"]) - 3.0, 0) / float(job["media"]["duration_s"]), 6)
                     for name, r in records.items() if r["status"] == "SUCCEEDED"}  # translate: skipped
    entered = {e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e}
    assert job["status"] == "SUCCEEDED", job
    assert job["media"]["duration_s"] == pytest.approx(630, abs=0.5)
    assert "DownscaleOnBatch" in entered and "DownscaleOnLambda" not in entered
    assert len(renditions["thumbnails"]) == 63  # one every 10 s


def solo(path: Path, settings: Settings) -> tuple[dict, dict]:
    """The transcript and detections a file gets alone, in this thread, from the stage functions."""
    facts = media.probe(path, settings)
    return transcribe.transcribe(path, facts, settings), detect.detect(path, facts, settings)


def test_six_uploads_at_once_each_get_their_solo_result(tmp_path, sample, speech_video, people_video, short_clip,
                                                        large_video, model_dir, fall_weights, capfd):
    """Six files of mixed lengths and sizes (one multipart) dropped at once by other S3 clients, one
    file under two keys: every job SUCCEEDED, each transcript and each detection list equal to the
    file's solo run, and nothing printed a traceback (shared models serve one job at a time)."""
    drops = {"uploads/a/sample.mp4": sample, "uploads/b/speech.mp4": speech_video[0],
             "uploads/c/people.mp4": people_video, "uploads/d/clip.mp4": short_clip,
             "uploads/e/speech again.mp4": speech_video[0], "uploads/f/large.mp4": large_video}
    with LocalCloud(tmp_path / "state") as cloud:
        with serving(cloud) as lines:
            droppers = [threading.Thread(target=other_s3_client(cloud).upload_file, args=(str(path), BUCKET, key))
                        for key, path in drops.items()]
            for dropper in droppers:
                dropper.start()
            for dropper in droppers:
                dropper.join()
            deadline = time.monotonic() + 600
            while sum(bool(re.match(r"job \w+: (SUCCEEDED|PARTIAL|FAILED)", line)) for line in lines) < len(drops):
                assert time.monotonic() < deadline, lines
                time.sleep(0.5)
        started = dict(re.match(r"(.+): started job (\w+)$", line).groups() for line in lines if ": started job " in line)
        assert set(started) == set(drops), lines
        results = {key: (cloud.store.job(job_id)["status"],
                         cloud.store.get_json(f"jobs/{job_id}/transcript.raw.json"),
                         cloud.store.get_json(f"jobs/{job_id}/detections.json")) for key, job_id in started.items()}
    settings = Settings(model_dir=str(model_dir), yolo_weights=str(fall_weights))
    alone = {path: tuple(json.loads(json.dumps(solo(path, settings)))) for path in set(drops.values())}
    for key, (status, transcript, detections) in results.items():
        assert status == "SUCCEEDED", (key, lines)
        assert (transcript, detections) == alone[drops[key]], key
    assert "brother bought a new car" in results["uploads/e/speech again.mp4"][1]["text"]
    printed = capfd.readouterr()
    assert "Traceback" not in printed.out + printed.err


def test_stopping_while_a_job_runs_saves_it_failed_with_the_reason(tmp_path, sample):
    state = tmp_path / "state"
    with LocalCloud(state) as cloud:
        job_id = cloud.upload(sample)["job_id"]
        deadline = time.monotonic() + 120
        while not cloud.store.steps(job_id):  # stop once a step runs
            assert time.monotonic() < deadline
            time.sleep(0.2)
    (saved,) = [i for i in json.loads((state / "items.json").read_text()) if i["SK"]["S"] == "JOB"]
    assert saved["status"]["S"] == "FAILED"
    assert saved["error"]["S"] == ("interrupted: local mode stopped while the job ran; run it again (the steps "
                                   "that had ended are reused) with `reelscope process VIDEO` or POST "
                                   f"/jobs/{job_id}/runs")


def cli(*args: str, env: dict | None = None, **kwargs):
    return [sys.executable, "-m", "reelscope.cli", *args], {"env": {**os.environ, **(env or {})}, "text": True, **kwargs}


def test_one_process_per_state_folder(tmp_path, people_video):
    state = tmp_path / "state"
    with LocalCloud(state):  # a second one in this process is refused earlier (tests/functional/test_local_state.py)
        command, options = cli("process", str(people_video), "--state-dir", str(state), "--out", str(tmp_path / "out"))
        done = subprocess.run(command, capture_output=True, timeout=120, **options)
    assert done.returncode == 2
    assert done.stderr.startswith(f"reelscope: process: state folder {state} is in use by pid {os.getpid()} (")
    assert not (tmp_path / "out").exists()


def test_a_busy_port_is_an_error_not_a_hang(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        command, options = cli("serve", "--port", str(port), "--state-dir", str(tmp_path / "a"))
        done = subprocess.run(command, capture_output=True, timeout=60, **options)
        assert (done.returncode, done.stderr) == (2, f"reelscope: serve: S3 endpoint port {port} on 127.0.0.1: "
                                                     "Address already in use; choose another with --port\n")
        command, options = cli("serve", "--port", "0", "--api-port", str(port), "--state-dir", str(tmp_path / "b"))
        done = subprocess.run(command, capture_output=True, timeout=60, **options)
        assert (done.returncode, done.stderr) == (2, f"reelscope: serve: API port {port} on 127.0.0.1: "
                                                     "Address already in use; choose another with --api-port\n")


def test_kill_9_during_a_job_then_the_same_command_resumes_it(tmp_path, speech_video, monkeypatch, capsys):
    """While a job runs its state is saved every second here (30 s by default); after kill -9 the
    lock is free, and `process` again resumes the job: the steps saved as ended are reused (not
    run: their records keep their first start), the others run, and the result is whole."""
    state, (video, _) = tmp_path / "state", speech_video
    command, options = cli("process", str(video), "--state-dir", str(state), "--out", str(tmp_path / "out"),
                           env={"REELSCOPE_STATE_SAVE_EVERY_S": "1"})
    running = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **options)
    deadline = time.monotonic() + 300
    items = state / "items.json"

    def ended_steps() -> dict[str, dict]:
        saved = json.loads(items.read_text()) if items.exists() else []
        return {i["step"]["S"]: i for i in saved if i["SK"]["S"].startswith("STEP#") and i["status"]["S"] == "SUCCEEDED"}

    while not ended_steps().keys() - {"probe"}:  # a step that is reused, not probe (it always runs)
        assert time.monotonic() < deadline and running.poll() is None, running.stderr.read() if running.poll() else ""
        time.sleep(0.05)
    running.send_signal(signal.SIGKILL)
    running.wait(timeout=30)
    saved = ended_steps()
    (job,) = [i for i in json.loads(items.read_text()) if i["SK"]["S"] == "JOB"]
    assert job["status"]["S"] in ("QUEUED", "RUNNING")  # as it was when killed

    monkeypatch.setenv("REELSCOPE_STATE_DIR", str(state))
    assert main(["process", str(video), "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr()
    job_id = job["job_id"]["S"]
    assert f"speech.mp4: job {job_id} was interrupted; resuming it" in printed.err and "status: SUCCEEDED" in printed.out
    reused = sorted(saved.keys() - {"probe"})
    assert f"reused from an earlier run of job {job_id}: " in printed.err
    with LocalCloud(state) as cloud:
        steps = cloud.store.steps(job_id, run=2)
        manifest = cloud.store.get_json(f"jobs/{job_id}/manifest.json")
    assert all(steps[name]["reused"] and steps[name]["started_at"] == saved[name]["started_at"]["S"] for name in reused)
    assert not any(step.get("reused") for name, step in steps.items() if name not in saved)
    assert manifest["status"] == "SUCCEEDED" and {"transcript.json", "720p.mp4", "report.pdf"} <= \
        {a["path"] for a in manifest["artifacts"]}


def test_serve_stops_on_sigterm_as_on_ctrl_c(tmp_path):
    """A service manager stops `serve` with SIGTERM: it exits 0, having saved its state and freed the folder."""
    state = tmp_path / "state"
    command, options = cli("serve", "--port", "0", "--api-port", "0", "--state-dir", str(state))
    serving = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **options)
    banner = serving.stdout.readline()
    assert banner.startswith("reelscope local: S3 endpoint http://127.0.0.1:"), serving.stderr.read()
    serving.send_signal(signal.SIGTERM)
    _, err = serving.communicate(timeout=60)
    assert serving.returncode == 0 and err.startswith("stopping: running steps finish first"), err
    assert (state / "items.json").is_file()
    with LocalCloud(state):  # the lock went with the process
        pass


def test_a_port_left_in_time_wait_by_a_stopped_server_is_free():
    """Restarting serve at once: the stopped server's connections linger in TIME_WAIT on its port."""
    from reelscope.local.cloud import _check_port_free

    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        accepted.close()  # the server's side closes first: its end of the connection waits in TIME_WAIT
        client.close()
    _check_port_free(port)
