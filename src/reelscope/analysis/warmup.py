"""The models a run uses: each named with its weights' sha256, and loaded ahead of the steps
that ask for them (while a Batch job downloads its video, while `serve` waits for an upload)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from reelscope.analysis import detect, ocr, speakers, whisper_models
from reelscope.analysis.pipeline import STEP_ORDER
from reelscope.artifacts import sha256_file
from reelscope.errors import ReelscopeError
from reelscope.settings import Settings


def _warm_detector(settings: Settings) -> None:
    import numpy as np

    with detect.detector(settings) as (model, _):  # OpenVINO compiles the network at the first prediction
        model.predict([np.zeros((64, 64, 3), np.uint8)], imgsz=settings.detect_imgsz,
                      conf=settings.detect_min_confidence, verbose=False)


def _hold(model_context) -> None:
    with model_context:
        pass


MODEL_WARMERS: dict[str, Callable[[Settings], None]] = {
    "transcribe": lambda settings: _hold(whisper_models.whisper_model(settings)),
    "speakers": lambda settings: _hold(speakers.encoder()),
    "detect": _warm_detector,
    "ocr": lambda settings: _hold(ocr.reader(settings)),
}


def models_in_use(settings: Settings) -> list[tuple[str, str, str]]:
    """(role, model, "sha256 …" of its weights, or why there is none) of each model these settings run."""
    def identified(role: str, name: str, files: Callable[[], list[Path]]) -> tuple[str, str, str]:
        try:
            paths = files()
            return role, name, f"sha256 {sha256_file(*paths)}" if paths else "no local weights"
        except ReelscopeError as err:
            return role, name, f"missing: {err}"

    whisper = settings.whisper_model or "bundled whisper-base (CTranslate2)"
    return [identified("speech", whisper, lambda: whisper_models.weights_files(settings.whisper_model)),
            identified("speakers", "resemblyzer pretrained.pt", lambda: [speakers.encoder_weights()]),
            identified("objects", settings.yolo_weights,
                       lambda: [detect.weights_path(settings.yolo_weights, settings.model_dir)])]


def warm_models(settings: Settings, steps=STEP_ORDER) -> None:
    """Load the models of `steps` into this process before a step asks for them: while a Batch job
    downloads its video, while `process` starts local mode and uploads, while `serve` waits for
    its first upload. Measured on 2 cores: 3.4 CPU s of loading (YOLOv8s OpenVINO compile 1.4 s,
    ultralytics import 1.1 s, Whisper 0.5 s), no longer on a short video's critical path. A step
    that asks first waits for the load in progress (models.exclusive). A model that cannot load
    is its step's to report: the step tries again and records why."""
    for step in steps:
        if step in MODEL_WARMERS:
            try:
                MODEL_WARMERS[step](settings)
            except Exception:  # the step records it (see above)
                pass
