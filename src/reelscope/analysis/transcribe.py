"""Speech to text: language, segments and word timestamps, a window of audio at a time.

The engine and its weights (REELSCOPE_WHISPER_ENGINE, REELSCOPE_WHISPER_MODEL) are chosen and
loaded in whisper_models. A stretch whose words Whisper doubts is heard again in the languages
its own audio suggests (relistened); words are tightened to the voice they were heard in.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import ffmpeg

from reelscope import progress
from reelscope.analysis import languages, media
from reelscope.analysis.media import GLOBAL_ARGS, file_url
from reelscope.analysis.whisper_models import engine_for, weights_sha256, whisper_model
from reelscope.settings import Settings

if TYPE_CHECKING:  # annotations only; numpy itself is imported where it is used
    import numpy as np

SAMPLE_RATE = 16000  # what Whisper expects
EDGE_S = 0.2  # audio kept around a stretch heard again: a word's first sound is not cut


def audio_windows(path: Path, window_s: float, tracks: int = 1) -> Iterator[tuple[float, np.ndarray]]:
    """(start in seconds on the video's timeline, mono float32 16 kHz samples) of the audio as heard
    (media.audio_heard: its `tracks` mixed, a late start kept), a window at a time,
    read from ffmpeg as it decodes: memory holds one window whatever the length (an hour decoded at
    once was 230 MB of samples, and Whisper's features of it several times that). A window ends
    in the quietest half second of its last third (quiet_cut), so no word is cut in two."""
    import numpy as np  # numpy is imported where used: the Lambda functions load this module without it

    args = (media.audio_heard(ffmpeg.input(file_url(path)), tracks).output("pipe:", format="f32le", ac=1, ar=SAMPLE_RATE)
            .global_args(*GLOBAL_ARGS).compile())
    window = max(int(window_s * SAMPLE_RATE), SAMPLE_RATE)
    with media.ffmpeg_output(args, path, "decoding audio") as proc:
        carried, start = np.zeros(0, np.float32), 0
        while True:
            wanted = window - len(carried)
            data = proc.stdout.read(wanted * 4)
            samples = np.concatenate([carried, np.frombuffer(data[: len(data) // 4 * 4], np.float32)])
            if len(data) < wanted * 4:  # the end of the audio
                if len(samples):
                    yield start / SAMPLE_RATE, samples
                break
            cut = quiet_cut(samples)
            yield start / SAMPLE_RATE, samples[:cut]
            carried, start = samples[cut:], start + cut


def quiet_cut(samples: np.ndarray) -> int:
    """Where to end a window: the middle of the quietest half second (10 ms energy frames) of its last third."""
    import numpy as np

    hop, span = SAMPLE_RATE // 100, 50
    tail = samples[len(samples) - len(samples) // 3:]
    frames = len(tail) // hop
    if frames <= span:
        return len(samples)
    energy = np.mean(tail[: frames * hop].reshape(frames, hop) ** 2, axis=1)
    quietest = int(np.argmin(np.convolve(energy, np.ones(span), mode="valid")))
    return len(samples) - len(tail) + (quietest + span // 2) * hop


def tighten_to_voice(words: list[dict], audio: np.ndarray) -> None:
    """Trim silent frames off the ends of each word, in place.

    Whisper stretches a word that follows a pause back over the pause (the first word of a
    segment often starts at the segment's padded start), so cues would show up to seconds
    before anyone speaks. A word's start moves forward, and its end back, across 10 ms frames
    quieter than a threshold set between the recording's noise floor (10th percentile) and its
    loud level (99th); a word with no frame above it keeps its times. Recordings with under
    20 dB between floor and loud level (music, constant noise) are left untouched.
    """
    import numpy as np

    hop = SAMPLE_RATE // 100
    frames = len(audio) // hop
    if frames == 0 or not words:
        return
    rms = np.sqrt(np.mean(audio[: frames * hop].reshape(frames, hop) ** 2, axis=1))
    level = 20 * np.log10(np.maximum(rms, 1e-5))
    floor, loud = np.percentile(level, 10), np.percentile(level, 99)
    if loud - floor < 20:
        return
    voiced = level > floor + 0.2 * (loud - floor)
    for word in words:
        first, last = int(word["start"] * 100), min(frames, int(np.ceil(word["end"] * 100)))
        inside = np.flatnonzero(voiced[first:last])
        if inside.size:
            word["start"] = round(float(first + inside[0]) / 100, 3)
            word["end"] = round(max(float(first + inside[-1] + 1) / 100, word["start"] + 0.01), 3)



def _openai_whisper(audio, settings: Settings, offset_s: float, total_s: float,
                    task: str = "transcribe") -> tuple[str, float | None, list[dict], str]:
    import torch
    import whisper

    with whisper_model(settings) as model:
        language, probability = settings.whisper_language or None, None
        if language is None and model.is_multilingual:
            mel = whisper.log_mel_spectrogram(whisper.pad_or_trim(audio), model.dims.n_mels).to(model.device)
            _, probs = model.detect_language(mel)
            language, probability = max(probs.items(), key=lambda item: item[1])
        elif language is None:
            language = "en"
        torch.manual_seed(0)  # temperature fallback samples: keep reruns identical (under the lock: no other job reseeds)
        result = model.transcribe(audio, language=language, word_timestamps=True, fp16=model.device.type == "cuda",
                                  condition_on_previous_text=False, verbose=None, task=task)
        engine = f"openai-whisper {'float16' if model.device.type == 'cuda' else 'float32'} on {model.device.type}"
        return language, probability, result["segments"], engine


def _ctranslate2(audio, settings: Settings, offset_s: float, total_s: float,
                 task: str = "transcribe") -> tuple[str, float | None, list[dict], str]:
    import ctranslate2

    with whisper_model(settings) as model:
        ctranslate2.set_random_seed(0)  # temperature fallback samples: reruns identical
        options = {"language": settings.whisper_language or None, "word_timestamps": True, "task": task,
                   "beam_size": settings.whisper_beam_size,
                   "condition_on_previous_text": False, "vad_filter": True,
                   # Silences from 0.5 s are cut out, not faster-whisper's default 2 s: decoded, the
                   # padded silence after a last sentence read "You" or "Thank you very much." (two voices, 30 s)
                   "vad_parameters": {"min_silence_duration_ms": 500}}
        batch = settings.whisper_batch_size or (16 if model.reelscope_cuda else 1)
        if batch > 1:  # the VAD's speech chunks decoded side by side (GPU throughput)
            from faster_whisper import BatchedInferencePipeline

            found, info = BatchedInferencePipeline(model).transcribe(audio, batch_size=batch, **options)
        else:
            found, info = model.transcribe(audio, **options)
        segments = []
        for seg in found:  # decoding happens here, under the lock, a segment at a time
            segments.append({"start": seg.start, "end": seg.end, "text": seg.text, "avg_logprob": seg.avg_logprob,
                             "no_speech_prob": seg.no_speech_prob,
                             "words": [{"word": w.word, "start": w.start, "end": w.end, "probability": w.probability}
                                       for w in seg.words or []]})
            progress.within(task, offset_s + seg.end, total_s)
        probability = None if settings.whisper_language else info.language_probability
        return info.language, probability, segments, model.reelscope_engine


def engine_run(settings: Settings):
    """The engine's run(audio, settings, offset_s, total_s, task) -> (language, probability, segments, engine name)."""
    return _ctranslate2 if engine_for(settings) == "ctranslate2" else _openai_whisper


# A doubtful stretch is decoded again in at most this many of the languages its own audio suggests
# (each at least LANGUAGE_MIN_PROBABILITY likely): Whisper base takes espeak's French for Thai
# (0.65) on one sentence and for French (0.26, Thai 0.19) on two.
LANGUAGES_TRIED, LANGUAGE_MIN_PROBABILITY = 2, 0.1
# A reading in another language replaces the doubtful one when Whisper is surer of its words, and
# at least this sure unless REELSCOPE_WHISPER_LANGUAGES named the candidates (measured on espeak
# French: read as French 0.58, as Thai 0.41-0.42, as English nonsense 0.28-0.44).
LANGUAGE_ACCEPT = 0.5


def languages_heard(audio, settings: Settings) -> list[str]:
    """The languages Whisper hears in `audio` (one encoder pass), likeliest first (LANGUAGES_TRIED
    at most), among REELSCOPE_WHISPER_LANGUAGES when set; none for an English-only model."""
    with whisper_model(settings) as model:
        if engine_for(settings) == "ctranslate2":
            if not model.model.is_multilingual:
                return []
            probabilities = dict(model.detect_language(audio)[2])
        elif not model.is_multilingual:
            return []
        else:
            import whisper

            mel = whisper.log_mel_spectrogram(whisper.pad_or_trim(audio), model.dims.n_mels).to(model.device)
            probabilities = model.detect_language(mel)[1]
    allowed = {k: v for k, v in probabilities.items() if k in settings.whisper_languages} or probabilities
    likely = sorted(allowed, key=lambda k: -allowed[k])
    return [k for k in likely[:LANGUAGES_TRIED] if allowed[k] >= LANGUAGE_MIN_PROBABILITY] or likely[:1]


def _sureness(segments: list[dict]) -> float:
    words = [w["probability"] for segment in segments for w in segment["words"]]
    return sum(words) / len(words) if words else 0.0


def relistened(segments: list[dict], audio, offset: float, total_s: float, language: str, settings: Settings) -> list[dict]:
    """A window's segments, each doubtful stretch heard again. Whisper detects one language per
    window, from its first 30 s, and speech in another language comes out as that language's
    words (measured: French read as "The shadows will attack the darkly mean.", its words at 0.36-0.39
    on average against 0.88-0.96 for the English beside it). So consecutive segments whose words
    average under REELSCOPE_WHISPER_DOUBT_PROBABILITY are a stretch whose own audio says its
    language (languages_heard); it is transcribed again in each other language heard, and the
    surest reading kept (LANGUAGE_ACCEPT). Those segments carry the `language` they were heard in.
    The cost is one encoder pass per doubtful stretch and a decode per language tried: none on
    clear speech."""
    run, heard = engine_run(settings), []
    for doubt, group in itertools.groupby(segments, key=lambda seg: _sureness([seg]) < settings.whisper_doubt_probability):
        stretch = list(group)
        start = max(0, int((stretch[0]["start"] - EDGE_S - offset) * SAMPLE_RATE))
        clip = audio[start:int((stretch[-1]["end"] + EDGE_S - offset) * SAMPLE_RATE)]
        best, surest = stretch, max(_sureness(stretch), 0.0 if settings.whisper_languages else LANGUAGE_ACCEPT)
        for other in (lang for lang in (languages_heard(clip, settings) if doubt else []) if lang != language):
            _, _, found, _ = run(clip, dataclasses.replace(settings, whisper_language=other), offset + start / SAMPLE_RATE,
                                 total_s)
            again = placed(found, clip, offset + start / SAMPLE_RATE)
            if _sureness(again) > surest:
                best, surest = [{**segment, "language": other} for segment in again], _sureness(again)
        heard += best
    return heard


def placed(found: list[dict], audio: np.ndarray, offset: float) -> list[dict]:
    """An engine's segments on the video's clock: times shifted by `offset`, rounded, words tightened
    to the voice (tighten_to_voice) and the segment to its words."""
    shifted = [{
        "start": round(offset + float(seg["start"]), 3),
        "end": round(offset + float(seg["end"]), 3),
        "text": seg["text"].strip(),
        "avg_logprob": round(float(seg["avg_logprob"]), 4),
        "no_speech_prob": round(float(seg["no_speech_prob"]), 4),
        "words": [{"word": w["word"].strip(), "start": round(float(w["start"]), 3), "end": round(float(w["end"]), 3),
                   "probability": round(float(w["probability"]), 4)} for w in seg.get("words", [])],
    } for seg in found]
    for segment in shifted:
        tighten_to_voice(segment["words"], audio)  # on the window's own times, shifted after
        for word in segment["words"]:
            word["start"], word["end"] = round(offset + word["start"], 3), round(offset + word["end"], 3)
        if segment["words"]:
            segment["start"], segment["end"] = segment["words"][0]["start"], segment["words"][-1]["end"]
    return shifted


def transcribe(path: Path, facts: dict, settings: Settings) -> dict:
    """transcript.json content. A video without audio gets an empty transcript and the reason."""
    if not facts["has_audio"]:
        return {"language": None, "language_probability": None, "languages": [], "model": None, "engine": None, "segments": [],
                "text": "", "skipped_reason": "no audio track"}
    run = engine_run(settings)
    segments, words_in, engine_name, windows = [], Counter(), engine_for(settings), 0
    language_of: dict[str, float | None] = {}  # each language found, with its first window's probability
    for offset, audio in audio_windows(path, settings.whisper_window_s, media.audio_tracks(facts)):
        language, probability, found, engine_name = run(audio, settings, offset, facts["duration_s"])
        shifted = placed(found, audio, offset)
        if not settings.whisper_language:
            shifted = relistened(shifted, audio, offset, facts["duration_s"], language, settings)
        segments += shifted
        windows += 1
        language_of.setdefault(language, probability)
        words_in[language] += sum(len(seg["words"]) for seg in shifted)
    # Whisper's language: the one most words were heard in (each window detects its own).
    language = max(language_of, key=lambda lang: words_in[lang]) if language_of else settings.whisper_language or None
    probability = language_of.get(language)
    each = ([settings.whisper_language] * len(segments) if settings.whisper_language
            else languages.segment_languages([seg["text"] for seg in segments], language))
    segments = [{"id": i, **seg, "language": seg.get("language") or lang} for i, (seg, lang) in enumerate(zip(segments, each))]
    spoken = languages.talk_time(segments)
    if spoken and spoken[0]["language"] != language:  # the language talked in longest, when segments say another
        language, probability = spoken[0]["language"], language_of.get(spoken[0]["language"])
    return {
        "language": language,
        "language_probability": None if probability is None else round(float(probability), 4),
        "languages": spoken,
        "model": settings.whisper_model or "bundled:whisper-base",
        "model_sha256": weights_sha256(settings.whisper_model),
        "engine": engine_name,
        "windows": windows,
        "segments": segments,
        "text": " ".join(seg["text"] for seg in segments),
    }
