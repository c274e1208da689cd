"""downscale: renditions from the ladder, never upscaled, aspect kept, audio kept, faststart."""

from __future__ import annotations

import math
from dataclasses import replace

import ffmpeg
import pytest

from reelscope import media, pipeline, synth
from reelscope.artifacts import read_json


def _streams(path):
    info = ffmpeg.probe(str(path))
    return info, {s["codec_type"]: s for s in info["streams"]}


def _run(video, out, settings):
    pipeline.probe(video, out, settings)
    published = pipeline.downscale(video, out, settings)
    return read_json(out / "renditions.json"), published


def test_landscape_with_audio(short_clip, tmp_path, settings):
    index, published = _run(short_clip, tmp_path, replace(settings, thumbnail_interval_s=2.5))
    assert [(r["name"], r["width"], r["height"]) for r in index["renditions"]] == [("720p", 1280, 720), ("480p", 854, 480)]
    for rendition in index["renditions"]:
        path = tmp_path / rendition["path"]
        info, streams = _streams(path)
        assert (streams["video"]["codec_name"], streams["video"]["pix_fmt"]) == ("h264", "yuv420p")
        assert (streams["video"]["width"], streams["video"]["height"]) == (rendition["width"], rendition["height"])
        assert float(info["format"]["duration"]) == pytest.approx(3.0, abs=1 / 25 + 0.03)  # within a frame (+AAC priming)
        assert float(streams["video"]["duration"]) == pytest.approx(3.0, abs=1 / 25)
        assert streams["audio"]["codec_name"] == "aac"
        data = path.read_bytes()
        assert data.find(b"moov") < data.find(b"mdat"), "faststart: index before media data"
    # Thumbnails every 2.5 s of a 3 s clip: t = 0 and 2.5 (the last, partial interval counts too).
    assert [t["t"] for t in index["thumbnails"]] == [0.0, 2.5]
    assert all((tmp_path / t["path"]).stat().st_size > 0 for t in index["thumbnails"])
    assert _streams(tmp_path / "poster.jpg")[1]["video"]["width"] == 1280
    assert set(published) >= {"720p.mp4", "480p.mp4", "poster.jpg", "renditions.json", "thumbnails/thumb_00001.jpg"}
    assert not list(tmp_path.glob(".staging-*"))


@pytest.mark.parametrize("how", ["rotated", "vertical"])
def test_portrait_video_keeps_its_orientation(how, short_clip, tmp_path, settings):
    if how == "rotated":  # a phone recording: landscape pixels + "rotate 90" in the container
        source = synth.with_rotation(short_clip, tmp_path / "phone.mp4", 90)
    else:  # portrait pixels
        source = synth.slideshow(tmp_path / "tall.mp4", [(synth.zidane_jpg(), 1.0)], size=(720, 1280))
    index, _ = _run(source, tmp_path / "out", settings)
    sizes = [(r["width"], r["height"]) for r in index["renditions"]]
    assert sizes == [(720, 1280), (480, 854)]
    for rendition in index["renditions"]:
        video = _streams(tmp_path / "out" / rendition["path"])[1]["video"]
        assert (video["width"], video["height"]) == (rendition["width"], rendition["height"])
        assert media._rotation(video) == 0  # pixels are upright: no rotation left for players to apply


def test_small_source_is_never_upscaled(tmp_path, settings):
    source = synth.slideshow(tmp_path / "small.mp4", [("color:blue", 1.0)], size=(426, 240))
    index, _ = _run(source, tmp_path / "out", settings)
    assert [(r["name"], r["width"], r["height"]) for r in index["renditions"]] == [("240p", 426, 240)]


def test_video_without_audio(people_video, tmp_path, settings):
    index, _ = _run(people_video, tmp_path, settings)
    _, streams = _streams(tmp_path / index["renditions"][0]["path"])
    assert "audio" not in streams
    assert math.isclose(float(streams["video"]["duration"]), 6.0, abs_tol=1 / 25)


def test_ladder_keeps_aspect_and_even_dimensions():
    facts = {"video": {"display_width": 1918, "display_height": 1080}}
    plan = media.plan_renditions(facts, (1080, 720, 360, 2160))
    assert [(p["width"], p["height"]) for p in plan] == [(1918, 1080), (1278, 720), (640, 360)]
    assert all(p["width"] % 2 == 0 and p["height"] % 2 == 0 for p in plan)
