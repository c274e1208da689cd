"""Settings come from REELSCOPE_* variables, with clear errors for bad values."""

from __future__ import annotations

import pytest

from reelscope.errors import ReelscopeError
from reelscope.settings import COCO_ANIMALS, Settings


def test_defaults():
    settings = Settings.from_env({})
    assert settings.ladder == (720, 480) and settings.detect_fps == 1.0
    assert settings.yolo_weights == "yolov8n.pt" and settings.whisper_model == ""
    assert settings.animal_labels == COCO_ANIMALS == (
        "bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe")


def test_environment_overrides():
    settings = Settings.from_env({"REELSCOPE_LADDER": "1080, 360", "REELSCOPE_DETECT_FPS": "2.5",
                                  "REELSCOPE_ANIMAL_LABELS": "dog,fox", "REELSCOPE_DETECT_BATCH": "4",
                                  "OTHER": "ignored"})
    assert (settings.ladder, settings.detect_fps, settings.animal_labels, settings.detect_batch) == \
           ((1080, 360), 2.5, ("dog", "fox"), 4)


@pytest.mark.parametrize("variable, value, message", [
    ("REELSCOPE_DETECT_FPS", "fast", "REELSCOPE_DETECT_FPS='fast' is not a valid float"),
    ("REELSCOPE_DETECT_FPS", "0", "detect_fps must be positive"),
    ("REELSCOPE_LADDER", "720,abc", "REELSCOPE_LADDER='720,abc' is not a valid tuple"),
    ("REELSCOPE_LADDER", "8", "ladder must list heights of at least 16 px"),
    ("REELSCOPE_DETECT_MIN_CONFIDENCE", "1.5", "detect_min_confidence must be within 0..1"),
    # ffmpeg took -2 threads as a broken file: probe called a good video "truncated or corrupt"
    ("REELSCOPE_FFMPEG_THREADS", "-2", "ffmpeg_threads must be at least 0, got -2; 0 means the default"),
    ("REELSCOPE_WHISPER_THREADS", "-1", "whisper_threads must be at least 0, got -1"),
])
def test_bad_values_name_the_variable(variable, value, message):
    with pytest.raises(ReelscopeError, match=message.replace("(", r"\(").replace(".", r"\.")):
        Settings.from_env({variable: value})


def test_settings_are_listed_by_section_with_their_values():
    import dataclasses

    from reelscope.cli import describe_settings
    from reelscope.settings import SECTIONS

    assert all(f.metadata["section"] in SECTIONS and f.metadata["meaning"] for f in dataclasses.fields(Settings))
    listed = describe_settings(Settings.from_env({"REELSCOPE_DETECT_FPS": "2", "REELSCOPE_LADDER": "480"}))
    assert "  REELSCOPE_DETECT_FPS=2.0  (default 1.0)\n      frames sampled per second" in listed
    assert "  REELSCOPE_LADDER=480  (default 720,480)" in listed and "  REELSCOPE_X264_CRF=23\n" in listed
    sections = [line.split(":")[0] for line in listed.splitlines() if not line.startswith(" ")]
    assert sections == list(SECTIONS)
