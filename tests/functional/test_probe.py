"""probe: media facts of good input; a clear refusal, naming file and reason, for bad input."""

from __future__ import annotations

import shutil

import ffmpeg
import pytest

from reelscope import synth
from reelscope.analysis import media
from reelscope.cli import main
from reelscope.errors import InvalidMedia


def test_facts_of_a_video_with_speech(speech_video, settings):
    video, spoken = speech_video
    facts = media.probe(video, settings)
    assert facts["file_name"] == "speech.mp4"
    assert facts["duration_s"] == pytest.approx(round(spoken[-1].end + 1.0, 1), abs=0.05)
    assert (facts["video"]["codec"], facts["video"]["width"], facts["video"]["height"]) == ("h264", 1280, 720)
    assert facts["video"]["fps"] == 25.0
    assert facts["video"]["rotation"] == 0
    assert facts["has_audio"] and facts["audio"]["codec"] == "aac"


def test_rotated_video_reports_display_size(short_clip, tmp_path, settings):
    rotated = synth.with_rotation(short_clip, tmp_path / "rotated.mp4", 90)
    facts = media.probe(rotated, settings)
    assert facts["video"]["rotation"] in (90, 270)
    assert (facts["video"]["width"], facts["video"]["height"]) == (1280, 720)
    assert (facts["video"]["display_width"], facts["video"]["display_height"]) == (720, 1280)


def _refusal(path, settings) -> str:
    with pytest.raises(InvalidMedia) as caught:
        media.probe(path, settings)
    assert caught.value.path == str(path)
    assert str(caught.value).startswith(path.name + ": ")
    return caught.value.reason


def test_zero_byte_file(tmp_path, settings):
    empty = tmp_path / "empty.mp4"
    empty.touch()
    assert _refusal(empty, settings) == "file is empty (0 bytes)"


def test_text_renamed_mp4(tmp_path, settings):
    fake = tmp_path / "notes.mp4"
    fake.write_text("these are meeting notes, not a video\n" * 20)
    assert _refusal(fake, settings).startswith("not a readable media file")


def test_missing_file(tmp_path, settings):
    assert _refusal(tmp_path / "nowhere.mp4", settings) == "no such file"


def test_truncated_mp4_index_at_end(short_clip, tmp_path, settings):
    """Plain ffmpeg output keeps the index (moov) at the end: a cut file has none."""
    plain = tmp_path / "plain.mp4"
    ffmpeg.input(str(short_clip)).output(str(plain), c="copy").global_args("-loglevel", "error").run()
    cut = tmp_path / "cut-plain.mp4"
    cut.write_bytes(plain.read_bytes()[: plain.stat().st_size * 6 // 10])
    assert "moov atom not found" in _refusal(cut, settings)


def test_truncated_mp4_index_at_start(short_clip, tmp_path, settings):
    """faststart files keep the index: ffprobe is satisfied, decoding the end is not."""
    data = short_clip.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")  # the fixture is faststart
    cut = tmp_path / "cut-faststart.mp4"
    cut.write_bytes(data[: len(data) * 6 // 10])
    assert _refusal(cut, settings).startswith("truncated or corrupt")


def test_audio_only_file(tmp_path, settings):
    audio = tmp_path / "voice.m4a"
    (ffmpeg.input("sine=frequency=300:duration=2", f="lavfi").output(str(audio), acodec="aac")
     .global_args("-loglevel", "error").run())
    assert _refusal(audio, settings) == "no video stream: an audio-only file"


def test_still_image(tmp_path, settings):
    image = tmp_path / "photo.mp4"
    shutil.copy(synth.bus_jpg(), image)
    assert "still image" in _refusal(image, settings)


def test_video_only_file_is_accepted(people_video, settings):
    facts = media.probe(people_video, settings)
    assert facts["has_audio"] is False and facts["audio"] is None


def test_limits_name_their_setting(short_clip, settings):
    from dataclasses import replace

    assert "REELSCOPE_MAX_DURATION_S" in _refusal(short_clip, replace(settings, max_duration_s=2.0))
    assert "REELSCOPE_MAX_BYTES" in _refusal(short_clip, replace(settings, max_bytes=1000))


def test_hostile_file_name(short_clip, tmp_path, settings):
    hostile = tmp_path / "-i concat:x + & ünïcode ..mp4"
    shutil.copy(short_clip, hostile)
    assert media.probe(hostile, settings)["file_name"] == hostile.name


def test_cli_refusal_is_one_clear_line_and_writes_nothing(tmp_path, capsys):
    empty = tmp_path / "empty clip.mp4"
    empty.touch()
    out = tmp_path / "out"
    assert main(["probe", str(empty), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"reelscope: probe: {empty}: file is empty (0 bytes)"  # the whole path, on this machine
    assert not out.exists() or not any(out.iterdir())
