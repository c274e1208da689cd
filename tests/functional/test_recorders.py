"""What cameras and recorders write, made here with ffmpeg from speech whose words and times we
chose: audio that starts after the first frame, a microphone a track (the first one silent), and
a raw H.264 elementary stream without a container."""

from __future__ import annotations

import subprocess

import pytest

from reelscope import synth
from reelscope.analysis import media, pipeline, transcribe
from reelscope.artifacts import read_json
from reelscope.settings import Settings

from .test_speech import MAX_WER, wer

SENTENCES = ["The weather is cold and windy today.", "Please open the window in the kitchen."]
LATE_S = 1.48  # as a DVR writes it: the audio stream's first sample 1.48 s after the first frame
WORD_TIME_S = 0.3


@pytest.fixture(scope="module")
def speech(media_dir):
    """(wav, spoken): two sentences from 1 s, 10 s in all."""
    wav = media_dir / "recorder-speech.wav"
    return wav, synth.speech_track(SENTENCES, wav, lead_s=1.0, gap_s=1.0, total_s=10.0)


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


def picture(seconds: float) -> list[str]:
    return ["-f", "lavfi", "-i", f"testsrc2=size=320x240:rate=25:duration={seconds}"]


def transcribed(video, out, model_dir) -> dict:
    settings = Settings(model_dir=str(model_dir))
    pipeline.probe(video, out, settings)
    pipeline.transcribe(video, out, settings)
    return read_json(out / "transcript.raw.json")


def test_audio_that_starts_late_keeps_its_words_where_they_are_spoken(speech, media_dir, tmp_path, model_dir):
    wav, spoken = speech
    video = media_dir / "late-audio.mp4"
    ffmpeg(*picture(12), "-itsoffset", str(LATE_S), "-i", str(wav), "-map", "0:v", "-map", "1:a", "-c:v", "libx264",
           "-c:a", "aac", str(video))
    transcript = transcribed(video, tmp_path, model_dir)
    assert read_json(tmp_path / "media.json")["audio"]["start_s"] == pytest.approx(LATE_S, abs=0.05)
    words = [w for segment in transcript["segments"] for w in segment["words"]]
    assert wer(" ".join(SENTENCES), " ".join(w["word"] for w in words)) <= 0.2  # 14 words: the first two may vary
    second = next(i for i, w in enumerate(words) if w["word"].lower().startswith("please"))
    for first, last, truth in ((words[0], words[second - 1], spoken[0]), (words[second], words[-1], spoken[1])):
        assert first["start"] == pytest.approx(truth.start + LATE_S, abs=WORD_TIME_S)
        assert last["end"] == pytest.approx(truth.end + LATE_S, abs=WORD_TIME_S)


def test_two_tracks_the_first_silent_are_heard_as_one(speech, media_dir, tmp_path, model_dir):
    wav, spoken = speech
    one, two = media_dir / "one-track.mp4", media_dir / "two-tracks.mp4"
    ffmpeg(*picture(10), "-i", str(wav), "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-c:a", "aac", str(one))
    ffmpeg(*picture(10), "-f", "lavfi", "-i", "anullsrc=r=22050:cl=mono:d=10", "-i", str(wav),
           "-map", "0:v", "-map", "1:a", "-map", "2:a", "-c:v", "libx264", "-c:a", "aac", str(two))
    alone = transcribed(one, tmp_path / "one", model_dir)
    both = transcribed(two, tmp_path / "two", model_dir)
    assert read_json(tmp_path / "two" / "media.json")["audio"]["tracks"] == 2
    assert wer(" ".join(SENTENCES), both["text"]) <= max(MAX_WER, wer(" ".join(SENTENCES), alone["text"]))
    assert both["segments"][0]["words"][0]["start"] == pytest.approx(spoken[0].start, abs=WORD_TIME_S)
    # The renditions carry both tracks mixed: a player plays the first track only.
    published = pipeline.downscale(two, tmp_path / "two", Settings(ladder=(240,)))
    rendition = tmp_path / "two" / next(p for p in published if p.endswith(".mp4"))
    heard = media.probe(rendition, Settings())
    assert heard["audio"]["tracks"] == 1
    ((_, samples),) = transcribe.audio_windows(rendition, 600)
    assert float(abs(samples).max()) > 0.1  # speech, not the silent first track


def test_a_raw_h264_stream_is_read_at_its_declared_rate(media_dir, tmp_path):
    raw = media_dir / "export.h264"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=15:duration=12", "-c:v", "libx264", "-f", "h264", str(raw))
    settings = Settings(ladder=(240,))
    pipeline.probe(raw, tmp_path, settings)
    facts = read_json(tmp_path / "media.json")
    assert facts["duration_s"] == 12.0 and facts["video"]["fps"] == 15.0 and facts["container"] == "h264"
    assert "elementary stream" in facts["video"]["timing"]
    pipeline.downscale(raw, tmp_path, settings)
    rendition = media.probe(tmp_path / "240p.mp4", settings)
    assert rendition["duration_s"] == pytest.approx(12.0, abs=0.1)
