"""Which source frame a sample is, and the frames one decode keeps for the steps after it: on a
video whose every frame shows its own number as its brightness."""

from __future__ import annotations

import math
import threading
import time

import cv2
import ffmpeg
import numpy as np
import pytest
from PIL import Image

from reelscope.analysis import frames, media
from reelscope.settings import Settings

FPS = 25


@pytest.fixture(scope="module")
def numbered(media_dir):
    """4 s at 25 fps, 1280x720; frame n has luma 16 + 2n (lossless, so the number reads back)."""
    path = media_dir / "numbered.mp4"
    (ffmpeg.input(f"color=black:s=1280x720:r={FPS}:d=4", f="lavfi").filter("geq", lum="16+2*N", cb=128, cr=128)
     .output(str(path), vcodec="libx264", qp=0, pix_fmt="yuv444p").global_args("-loglevel", "error")
     .run(overwrite_output=True))
    return path, media.probe(path, Settings())


def frame_number(frame: np.ndarray) -> float:
    """The number a frame shows, from its mean luma (BGR, full range after ffmpeg's conversion)."""
    gray = float(frame.astype(float).mean())  # a gray frame: R = G = B = (luma - 16) * 255 / 219
    return gray * 219 / 255 / 2


@pytest.mark.parametrize("fps", [1.0, 3.0])
def test_a_sample_is_the_last_frame_shown_at_or_before_its_time(numbered, fps):
    path, facts = numbered
    samples = list(frames.sample_frames(path, facts, fps, 640, threads=1))
    assert [t for t, _ in samples] == [round(i / fps, 3) for i in range(math.ceil(4 * fps))]
    for t, frame in samples:
        assert frame_number(frame) == pytest.approx(math.floor(t * FPS + 1e-9), abs=0.6), t


def test_the_kept_frames_are_the_samples(numbered, tmp_path):
    path, facts = numbered
    samples = list(frames.sample_frames(path, facts, 1.0, 640, 1, keep=(tmp_path, 1280)))
    kept = frames.KeptFrames.find(tmp_path)
    assert len(samples) == 4 and (kept.fps, kept.size, kept.count) == (1.0, (1280, 720), 4)
    for t, sample in samples:
        frame = cv2.imread(str(kept.path_at(t)))
        assert frame.shape == (720, 1280, 3)
        assert frame_number(frame) == pytest.approx(frame_number(sample), abs=0.6)
    assert kept.path_at(2.0).name == "000002.jpg"
    assert kept.path_at(2.5) is None and kept.path_at(4.0) is None  # not a sample time; past the end

    # a frame at a sample time comes from the kept frames, not from a seek: resized, not decoded
    out = media.extract_frame(path, 3.0, tmp_path / "small.jpg", 320, 180, kept.path_at(3.0))
    with Image.open(out) as image:
        assert image.size == (320, 180)
        assert frame_number(np.asarray(image.convert("RGB"))) == pytest.approx(75, abs=0.6)


def test_kept_frames_of_an_unfinished_decode_are_not_found(numbered, tmp_path, monkeypatch):
    path, facts = numbered
    monkeypatch.setattr(frames, "READ_AHEAD", 1)  # the reader blocks on a full queue once the caller stops
    samples = frames.sample_frames(path, facts, 1.0, 640, 1, keep=(tmp_path, 1280))
    next(samples)
    time.sleep(1.0)  # the reader fills its queue and waits
    samples.close()  # the reader stopped (a failing step): no index, so no step after it reads them
    assert frames.KeptFrames.find(tmp_path) is None
    assert not [t for t in threading.enumerate() if t.name == "read-ahead"]  # ffmpeg stopped, its reader gone
