"""downscale: renditions from the ladder, never upscaled, aspect kept, audio kept, faststart."""

from __future__ import annotations

import math
from dataclasses import replace

import ffmpeg
import pytest

from reelscope import synth
from reelscope.analysis import media, pipeline
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


def _packets_md5(path, stream: str = "v:0") -> str:
    """A stream's packets, hashed as they are stored (no decoding)."""
    import subprocess

    done = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", f"0:{stream}", "-c", "copy", "-f", "md5", "-"],
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture(scope="module")
def browser_ready_720p(media_dir):
    """A 1280x720 H.264 High-profile file with AAC at a streaming bit rate, as phones and editors write them."""
    out = media_dir / "ready720.mp4"
    video = ffmpeg.input("testsrc2=size=1280x720:rate=25:duration=4", f="lavfi")
    audio = ffmpeg.input("sine=frequency=440:duration=4", f="lavfi")
    (ffmpeg.output(video, audio, str(out), vcodec="libx264", pix_fmt="yuv420p", profile="high", preset="veryfast",
                   video_bitrate="2M", acodec="aac").global_args("-loglevel", "error").run(overwrite_output=True))
    return out


def test_a_rendition_the_source_already_is_is_copied_and_plays(browser_ready_720p, tmp_path, settings):
    index, _ = _run(browser_ready_720p, tmp_path, settings)
    made = {r["name"]: r["made_by"] for r in index["renditions"]}
    assert made == {"720p": "stream copy", "480p": "x264"}
    copy = tmp_path / "720p.mp4"
    assert _packets_md5(copy) == _packets_md5(browser_ready_720p)  # not re-encoded
    # the source's AAC goes into every rendition as it is, the encoded 480p one too
    assert {_packets_md5(tmp_path / f"{name}.mp4", "a:0") for name in made} == {_packets_md5(browser_ready_720p, "a:0")}
    data = copy.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat"), "faststart: index before media data"
    _, streams = _streams(copy)
    assert streams["audio"]["codec_name"] == "aac" and float(streams["video"]["duration"]) == pytest.approx(4.0, abs=0.05)
    assert len(index["thumbnails"]) == 1 and (tmp_path / "poster.jpg").is_file()

    from playwright.sync_api import sync_playwright

    sizes = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        for name in made:
            (tmp_path / "play.html").write_text(f'<video id="v" src="{name}.mp4"></video>')
            page.goto((tmp_path / "play.html").as_uri())
            page.wait_for_function("document.getElementById('v').readyState >= 2", timeout=20_000)
            sizes.append(page.evaluate("[document.getElementById('v').videoWidth, document.getElementById('v').videoHeight,"
                                       " document.getElementById('v').duration]"))
            page.evaluate("document.getElementById('v').currentTime = 3.0")
            page.wait_for_function("!document.getElementById('v').seeking && document.getElementById('v').readyState >= 2")
        browser.close()
    assert [size[:2] for size in sizes] == [[1280, 720], [854, 480]]
    assert all(size[2] == pytest.approx(4.0, abs=0.1) for size in sizes)


def test_sources_a_browser_should_not_get_as_they_are_are_encoded(browser_ready_720p, tmp_path, settings):
    """Over the bit rate cap, or turned by rotation metadata: encoded, never copied."""
    heavy = replace(settings, copy_max_bit_rate=1_000_000)
    index, _ = _run(browser_ready_720p, tmp_path / "heavy", heavy)
    assert [r["made_by"] for r in index["renditions"]] == ["x264", "x264"]
    rotated = synth.with_rotation(browser_ready_720p, tmp_path / "phone.mp4", 90)
    index, _ = _run(rotated, tmp_path / "rotated", settings)
    assert [(r["width"], r["made_by"]) for r in index["renditions"]] == [(720, "x264"), (480, "x264")]
