"""The real definition executed by moto's interpreter, its Lambda and Batch tasks running the
project's handlers and entrypoint: real ffmpeg, Whisper and YOLO, S3 and DynamoDB in moto."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import tracemalloc
import zlib

import boto3
import pytest
from botocore.exceptions import ClientError

from reelscope import synth
from reelscope.analysis import pipeline
from reelscope.local.cloud import BUCKET, LocalCloud
from reelscope.settings import Settings

from ..conftest import WOMAN
from ..localmode import entered, history, run
from .test_speech import wer

STEPS = {"probe", "downscale", "transcribe", "speakers", "translate", "subtitles", "detect", "shots", "tracks", "entities",
         "ocr"}


@pytest.fixture(scope="module")
def cloud(tmp_path_factory, model_dir, fall_weights):
    env = pytest.MonkeyPatch()
    env.setenv("REELSCOPE_MODEL_DIR", str(model_dir))
    env.setenv("REELSCOPE_YOLO_WEIGHTS", str(fall_weights))
    with LocalCloud(tmp_path_factory.mktemp("state")) as running:
        yield running
    env.undo()


def test_a_ranged_read_reads_its_range_alone(cloud, tmp_path):
    """Every branch downloads the video as boto3 does, in ranged GETs of 8 MiB: each reads its range
    only (moto alone read the whole object for each), and what moto does not slice comes whole."""
    data = os.urandom(48 << 20)
    (tmp_path / "big.bin").write_bytes(data)
    key = "media/ranged-read-test.bin"
    cloud.store.upload(tmp_path / "big.bin", key)
    assert cloud.s3.get_object(Bucket=BUCKET, Key=key, Range="bytes=-10")["Body"].read() == data[-10:]  # code paths loaded
    tracemalloc.start()
    try:
        part = cloud.s3.get_object(Bucket=BUCKET, Key=key, Range="bytes=1000-1999")["Body"].read()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert part == data[1000:2000]
    size = len(data)
    assert peak < size // 2, f"a 1000-byte range of {size} allocated {peak} bytes"  # the whole object: more than all
    assert cloud.s3.get_object(Bucket=BUCKET, Key=key, Range="bytes=0-9,20-29")["Body"].read() == data  # several: all
    cloud.store.download(key, tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == data
    cloud.s3.delete_object(Bucket=BUCKET, Key=key)


def test_a_multipart_upload_is_joined_on_disk(cloud, tmp_path):
    """A client's multipart upload (boto3, the AWS CLI: anything over 8 MiB) is joined in a file,
    not in memory (moto alone held the object three times at once while it joined the parts); the
    object, its ETag and its per-part CRC32 checksum are those S3 gives for the same parts."""
    data = os.urandom(48 << 20)
    parts = [data[start:start + (8 << 20)] for start in range(0, len(data), 8 << 20)]
    key = "media/joined-upload-test.bin"
    upload = cloud.s3.create_multipart_upload(Bucket=BUCKET, Key=key, ChecksumAlgorithm="CRC32")["UploadId"]
    sent = [{"PartNumber": number, **{name: answer[name] for name in ("ETag", "ChecksumCRC32")}}
            for number, part in enumerate(parts, 1)
            for answer in [cloud.s3.upload_part(Bucket=BUCKET, Key=key, UploadId=upload, PartNumber=number,
                                                Body=part, ChecksumAlgorithm="CRC32")]]
    tracemalloc.start()
    try:
        cloud.s3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload, MultipartUpload={"Parts": sent})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < len(data) // 2, f"joining {len(data)} bytes allocated {peak} bytes"
    head = cloud.s3.head_object(Bucket=BUCKET, Key=key, ChecksumMode="ENABLED")
    md5s = b"".join(hashlib.md5(part).digest() for part in parts)
    assert head["ETag"] == f'"{hashlib.md5(md5s).hexdigest()}-{len(parts)}"' and head["ContentLength"] == len(data)
    crcs = b"".join(zlib.crc32(part).to_bytes(4, "big") for part in parts)
    assert head["ChecksumCRC32"] == base64.b64encode(zlib.crc32(crcs).to_bytes(4, "big")).decode()
    cloud.store.download(key, tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == data
    cloud.s3.delete_object(Bucket=BUCKET, Key=key)


def test_a_browser_upload_goes_to_disk_as_it_arrives(cloud, tmp_path):
    """A presigned POST (what the page sends) is read as it arrives and stored from a file: the
    server allocates a fraction of the upload (moto alone held the body twice). curl sends it, from
    another process, as a browser would."""
    data = os.urandom(96 << 20)
    (tmp_path / "clip.bin").write_bytes(data)
    key = "media/posted-upload-test.bin"
    post = cloud.store.s3.generate_presigned_post(Bucket=BUCKET, Key=key, Fields={"Content-Type": "video/mp4"},
                                            Conditions=[["content-length-range", 1, 1 << 30],
                                                        ["eq", "$Content-Type", "video/mp4"]])
    form = [arg for name, value in post["fields"].items() for arg in ("-F", f"{name}={value}")]
    tracemalloc.start()
    try:
        sent = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", *form,
                               "-F", f"file=@{tmp_path / 'clip.bin'}", post["url"]], capture_output=True, text=True)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sent.stdout == "204", sent
    # bounded whatever the size: moto's ETag reads the stored file 16 MiB at a time (33.6 MB seen)
    assert peak < len(data) // 2, f"a {len(data)}-byte POST allocated {peak} bytes"
    head = cloud.s3.head_object(Bucket=BUCKET, Key=key)
    assert head["ContentType"] == "video/mp4" and head["ContentLength"] == len(data)
    assert head["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    cloud.store.download(key, tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == data
    cloud.s3.delete_object(Bucket=BUCKET, Key=key)


def test_a_video_goes_through_every_state(cloud, sample, tmp_path):
    job_id, job = run(cloud, sample, "uploads/sample.mp4")
    assert job["status"] == "SUCCEEDED" and "error" not in job
    assert job["media"]["duration_s"] == 16.0 and job["source"]["key"] == "uploads/sample.mp4"
    assert set(entered(history(cloud, job_id))) >= {"Probe", "Analyze", "RouteRenditions", "DownscaleOnLambda",
                                                     "Transcribe", "Subtitles", "Detect", "ReadText", "Index", "Finalize"}
    steps = cloud.store.steps(job_id)
    assert set(steps) == STEPS
    for name, step in steps.items():  # the bundled Whisper does not translate: that step says why, SKIPPED
        assert step["status"] == ("SKIPPED" if name == "translate" else "SUCCEEDED"), (name, step)
        assert step["started_at"] <= step["ended_at"] and step["duration_s"] >= 0
    assert "translates into nonsense" in steps["translate"]["error"]
    assert steps["transcribe"]["duration_s"] > 1 and steps["detect"]["duration_s"] > 1  # real models ran

    manifest = cloud.store.get_json(f"jobs/{job_id}/manifest.json")
    assert manifest["status"] == "SUCCEEDED" and set(manifest["steps"]) == STEPS
    assert {"report.json", "report.pdf", "entities.csv", "transcript.csv"} <= {a["path"] for a in manifest["artifacts"]}
    report = cloud.store.get_json(f"jobs/{job_id}/report.json")
    assert report["status"] == "SUCCEEDED"
    # The index step built it from what the steps delivered: each part says what its artifact says.
    delivered = {name: cloud.store.get_json(f"jobs/{job_id}/{name}") for name in
              ("transcript.json", "entities.json", "renditions.json", "shots.json", "tracks.json", "ocr.json")}
    assert [s["text"] for s in report["transcript"]] == [s["text"] for s in delivered["transcript.json"]["segments"]]
    assert [e["evidence"]["path"] for e in report["entities"]] == [
        e["evidence"]["path"] for e in delivered["entities.json"]["entities"] + delivered["ocr.json"]["texts"]]
    assert report["renditions"] == delivered["renditions.json"]["renditions"]
    assert report["shots"] == delivered["shots.json"]["shots"]
    assert [t["id"] for t in report["tracks"]] == [t["id"] for t in delivered["tracks.json"]["tracks"]]
    assert report["media"]["duration_s"] == 16.0 and report["transcript"] and report["shots"] and report["tracks"]
    listed = {f"jobs/{job_id}/{a['path']}": a["sha256"] for a in manifest["artifacts"]}
    stored = {o["Key"] for o in cloud.s3.list_objects_v2(Bucket=BUCKET, Prefix=f"jobs/{job_id}/")["Contents"]}
    # what each step published (translate skipped)
    records = {f"jobs/{job_id}/records/{name}-outputs.json" for name in pipeline.STEP_ORDER if name != "translate"}
    assert stored == set(listed) | {f"jobs/{job_id}/manifest.json", f"jobs/{job_id}/manifest.sig.json"} | records
    for key, sha in listed.items():
        assert hashlib.sha256(cloud.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()).hexdigest() == sha
    assert cloud.store.get_json(f"jobs/{job_id}/transcript.json")["language"] == "en"
    people = [e for e in cloud.store.get_json(f"jobs/{job_id}/entities.json")["entities"] if e["label"] == "person"]
    assert [(round(e["start"]), round(e["end"])) for e in people] == [(5, 10), (10, 16)]  # a hard cut at 10 s

    exported = cloud.export(job_id, tmp_path)
    assert sorted(p.relative_to(exported).as_posix() for p in exported.rglob("*") if p.is_file()) == \
           sorted(k.split("/", 2)[2] for k in stored - records)  # records are the service's, not results

    # The same object announced again (a duplicate delivery) starts nothing.
    etag = cloud.s3.head_object(Bucket=BUCKET, Key="uploads/sample.mp4")["ETag"]
    event = {"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": BUCKET}, "object": {
        "key": "uploads/sample.mp4", "size": sample.stat().st_size, "eTag": etag}}}]}
    for _ in range(2):
        result, error = cloud.runner.invoke("ingest", event)
        assert error is None and result["objects"][0] == {**result["objects"][0], "job_id": job_id, "outcome": "duplicate"}
    executions = cloud.sfn.list_executions(stateMachineArn=cloud.state_machine_arn)["executions"]
    assert [e["name"] for e in executions].count(job_id) == 1
    assert cloud.store.job(job_id)["status"] == "SUCCEEDED"


def test_corrupt_upload_fails_with_a_readable_cause_and_a_changed_upload_is_a_new_job(cloud, tmp_path):
    broken = tmp_path / "broken clip.mp4"
    broken.write_text("this is not a video")
    job_id, job = run(cloud, broken, "uploads/broken clip.mp4")
    assert job["status"] == "FAILED"
    assert job["error"].startswith("broken clip.mp4: not a readable media file")
    assert entered(history(cloud, job_id))[-2:] == ["MarkFailed", "Failed"]
    assert cloud.store.steps(job_id)["probe"]["status"] == "FAILED"

    broken.write_text("still not a video, but other bytes")
    second_id, second = run(cloud, broken, "uploads/broken clip.mp4")
    assert second_id != job_id and second["status"] == "FAILED"


def test_vision_failure_leaves_the_job_partial_and_running_it_again_runs_only_vision(cloud, sample, monkeypatch):
    monkeypatch.setenv("REELSCOPE_YOLO_WEIGHTS", "/nonexistent/weights.pt")
    job_id, job = run(cloud, sample, "uploads/vision fails/sample.mp4")
    assert job["status"] == "PARTIAL" and job["failed_steps"] == ["detect"]
    steps = cloud.store.steps(job_id)
    assert steps["detect"]["status"] == "FAILED" and "weights.pt' not found" in steps["detect"]["error"]
    manifest = cloud.store.get_json(f"jobs/{job_id}/manifest.json")
    for step in ("shots", "tracks", "entities"):  # they need detect's output
        assert manifest["steps"][step] == {"status": "SKIPPED", "error": "detect failed"}
    # ocr needs nothing of detect: its own branch delivers it
    assert manifest["steps"]["ocr"]["status"] == "SUCCEEDED" and steps["ocr"]["status"] == "SUCCEEDED"
    assert manifest["steps"]["ocr"]["summary"]["wall_clock"] == ""  # no burned-in clock in this video
    paths = {a["path"] for a in manifest["artifacts"]}
    assert {"transcript.json", "subtitles.srt", "subtitles.vtt", "720p.mp4", "ocr.json"} <= paths
    assert not paths & {"detections.json", "entities.json", "shots.json", "tracks.json"}

    # The weights fixed, the job runs again: detect and the steps it feeds run; the rest is reused.
    monkeypatch.undo()
    cloud.upload(sample, "uploads/vision fails/sample.mp4", rerun=True)
    job = cloud.wait(job_id, timeout_s=600)
    assert job["status"] == "SUCCEEDED" and job["failed_steps"] == []
    again = cloud.store.steps(job_id, run=2)
    vision = {"detect", "shots", "tracks", "entities"}
    assert {name for name, step in again.items() if step.get("reused")} == STEPS - vision - {"probe"}
    assert all(again[name]["started_at"] == steps[name]["started_at"] for name in STEPS - vision - {"probe"})
    assert all(again[name]["status"] == "SUCCEEDED" and again[name]["started_at"] > steps["detect"]["ended_at"]
               for name in vision)
    manifest = cloud.store.get_json(f"jobs/{job_id}/manifest.json")
    assert {"detections.json", "entities.json", "shots.json", "tracks.json", "ocr.json", "720p.mp4"} <= \
        {a["path"] for a in manifest["artifacts"]}


def test_transient_lambda_error_is_retried_and_hostile_keys_survive(cloud, people_video):
    failures = []

    def fail_once(model, context, **_):
        if context["reelscope_params"]["FunctionName"].endswith("reelscope-downscale") and not failures:
            failures.append(1)
            raise ClientError({"Error": {"Code": "ServiceException", "Message": "simulated outage"},
                               "ResponseMetadata": {"HTTPStatusCode": 500, "RequestId": "test"}}, "Invoke")

    events = boto3.DEFAULT_SESSION.events
    events.register_first("before-call.lambda.Invoke", fail_once, unique_id="test-fail-once")
    try:
        key = "uploads/dir one/ünï cödé + & clip.mp4"
        job_id, job = run(cloud, people_video, key)
    finally:
        events.unregister("before-call.lambda.Invoke", unique_id="test-fail-once")
    assert failures == [1]
    assert job["status"] == "SUCCEEDED" and job["source"]["key"] == key
    assert job["media"]["file_name"] == "ünï cödé + & clip.mp4" and job["media"]["has_audio"] is False
    failed = [e["taskFailedEventDetails"]["error"] for e in history(cloud, job_id) if e["type"] == "TaskFailed"]
    assert failed == ["Lambda.ServiceException"]
    assert cloud.store.steps(job_id)["downscale"]["status"] == "SUCCEEDED"
    assert cloud.store.get_json(f"jobs/{job_id}/transcript.json")["skipped_reason"] == "no audio track"


# French then English in another voice (a language switch inside one window, two speakers), over a
# picture with a caption shown twice and a burned-in clock.
PARITY_SPEECH = [("Bonjour à tous, la réunion commence maintenant.", "fr"),
                 ("Nous allons parler du budget de l'année prochaine.", "fr"),
                 ("Thank you, let us continue in English now.", WOMAN), ("The budget for next year is ready for review.", WOMAN)]
CAPTION = "Meeting room two"
CLOCK_AT_START = 1_780_000_000  # 2026-05-28 20:26:40


@pytest.fixture(scope="module")
def parity_clip(media_dir):
    wav = media_dir / "parity.wav"
    spoken = synth.speech_track([text for text, _ in PARITY_SPEECH], wav, gap_s=0.8,
                                voice=[voice for _, voice in PARITY_SPEECH])
    duration = round(spoken[-1].end + 1.5, 1)
    plain = synth.slideshow(media_dir / "parity-plain.mp4", [("color:gray", duration)], (640, 360), 10, audio=wav)
    video = synth.captioned(plain, media_dir / "parity.mp4", [
        (synth.clock(CLOCK_AT_START), 0, duration, 20, 20, 28), (CAPTION, 2, 6, 200, 280, 32),
        (CAPTION, 10, 14, 200, 280, 32)])
    return video, spoken


def test_the_state_machine_delivers_what_analyze_does(cloud, parity_clip, tmp_path, monkeypatch, model_dir, fall_weights):
    """Each task of the state machine runs alone, on the files it declares (pipeline.STEP_READS):
    what it delivers is byte for byte what `analyze` makes in one folder, and it is right: each
    segment and word of transcript.json names its speaker, the subtitles name the voices, the
    French is French, one clock overlay, the caption twice."""
    video, spoken = parity_clip
    monkeypatch.setenv("REELSCOPE_WHISPER_LANGUAGES", "fr,en")
    settings = Settings.from_env()
    local = pipeline.analyze(video, tmp_path / "analyze", settings)["manifest"]
    job_id, job = run(cloud, video, "uploads/parity.mp4")
    assert job["status"] == local["status"] == "SUCCEEDED", job.get("error")
    served = cloud.store.get_json(f"jobs/{job_id}/manifest.json")
    made_by_analyze = {a["path"]: a["sha256"] for a in local["artifacts"]}
    delivered = {a["path"]: a["sha256"] for a in served["artifacts"]}
    assert set(delivered) - set(made_by_analyze) == {"search/vectors.json"}  # the service's search index
    # report.json and report.pdf name the job (analyze has none).
    differ = {path for path in made_by_analyze if delivered[path] != made_by_analyze[path]}
    assert differ <= {"report.json", "report.pdf"}, differ

    transcript = cloud.store.get_json(f"jobs/{job_id}/transcript.json")
    segments = transcript["segments"]
    assert all(s["speaker"] and all(w["speaker"] == s["speaker"] for w in s["words"]) for s in segments)
    switch = (spoken[1].end + spoken[2].start) / 2
    assert [(s["language"], s["speaker"]) for s in segments] == [
        ("fr" if s["end"] < switch else "en", "S1" if s["end"] < switch else "S2") for s in segments]
    french = " ".join(s["text"] for s in segments if s["language"] == "fr")
    assert wer(" ".join(text for text, _ in PARITY_SPEECH[:2]), french) <= 0.3
    vtt = cloud.s3.get_object(Bucket=BUCKET, Key=f"jobs/{job_id}/subtitles.vtt")["Body"].read().decode()
    srt_text = cloud.s3.get_object(Bucket=BUCKET, Key=f"jobs/{job_id}/subtitles.srt")["Body"].read().decode()
    assert "<v S1>" in vtt and "<v S2>" in vtt and "S1: " in srt_text and "S2: " in srt_text

    texts = cloud.store.get_json(f"jobs/{job_id}/ocr.json")
    assert len(texts["overlays"]) == 1 and texts["wall_clock"]["start"] == "2026-05-28T20:26:40"
    assert [t["text"] for t in texts["texts"]] == [CAPTION, CAPTION]
