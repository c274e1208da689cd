"""English from speech in other languages: Whisper's translate task, where the model can do it.

Only the segments whose language (languages.py) is not English are translated, a run of
consecutive segments of one language at a time, the run's language given to Whisper. English
segments need nothing. The bundled base model's translations are nonsense (measured on French:
docs/BENCHMARKS.md), so the step runs only with a multilingual model whose name holds one of
REELSCOPE_TRANSLATE_MODELS (small, medium, large...; turbo models were not trained to translate);
otherwise it is recorded SKIPPED with the reason, never run to produce nonsense.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from reelscope.analysis import transcribe as transcribe_mod
from reelscope.errors import StepSkipped
from reelscope.settings import Settings

SAMPLE_RATE = transcribe_mod.SAMPLE_RATE
RUN_GAP_S = 2.0  # segments of one language this close are translated together (context helps)
EDGE_S = transcribe_mod.EDGE_S


def model_name(settings: Settings) -> str:
    """What the configured Whisper model is called: base for the bundled one, else the name of the
    folder or file (a model name as it is)."""
    spec = settings.whisper_model
    if not spec:
        return "base"
    path = Path(spec)
    return (path.stem if path.suffix == ".pt" else path.name).lower()


def why_not(settings: Settings) -> str | None:
    """Why the configured model may not translate, or None when it may."""
    name = model_name(settings)
    if re.search(r"\.en($|[^a-z])", name):  # small.en, distil-medium.en
        return f"Whisper {name!r} knows English only: nothing to translate from"
    if "turbo" in name:
        return f"Whisper {name!r} was not trained to translate (turbo models transcribe only)"
    allowed = settings.translate_models
    if not any(re.search(rf"(^|[^a-z0-9]){re.escape(size.lower())}($|[^a-z0-9])", name) for size in allowed):
        return (f"Whisper {name!r} translates into nonsense; translation runs with a model named "
                f"{', '.join(allowed)} (REELSCOPE_TRANSLATE_MODELS, REELSCOPE_WHISPER_MODEL)")
    return None


def runs(segments: list[dict]) -> list[tuple[str, float, float]]:
    """(language, start, end) of each run of consecutive non-English segments of one language."""
    found: list[list] = []
    for segment in segments:
        language = segment.get("language")
        if not language or language == "en":
            found.append(None)
            continue
        last = found[-1] if found else None
        if last and last[0] == language and segment["start"] - last[2] <= RUN_GAP_S:
            last[2] = segment["end"]
        else:
            found.append([language, segment["start"], segment["end"]])
    return [tuple(run) for run in found if run]


def translate(path: Path, transcript: dict, settings: Settings, tracks: int = 1) -> dict:
    """transcript.en.json content: English segments for the speech that was not in English.
    Raises StepSkipped when the model may not translate or nothing is outside English."""
    if reason := why_not(settings):
        raise StepSkipped(reason)
    todo = runs(transcript.get("segments", []))
    if not todo:
        raise StepSkipped("all the speech is in English" if transcript.get("segments") else "no speech")
    run_engine = transcribe_mod.engine_run(settings)
    segments, engine, pending = [], None, list(todo)
    for offset, audio in transcribe_mod.audio_windows(path, settings.whisper_window_s, tracks):
        window_end = offset + len(audio) / SAMPLE_RATE
        while pending and pending[0][1] < window_end:
            language, start, end = pending.pop(0)
            first = max(0, int((start - EDGE_S - offset) * SAMPLE_RATE))
            clip = audio[first:int((min(end, window_end) + EDGE_S - offset) * SAMPLE_RATE)]
            _, _, found, engine = run_engine(clip, dataclasses.replace(settings, whisper_language=language),
                                             offset + first / SAMPLE_RATE, todo[-1][2], "translate")
            segments += [{**segment, "source_language": language}
                         for segment in transcribe_mod.placed(found, clip, offset + first / SAMPLE_RATE)]
    segments = [{"id": i, **segment, "language": "en"} for i, segment in enumerate(segments)]
    return {"task": "translate", "language": "en", "model": model_name(settings), "engine": engine,
            "translated_runs": len(todo), "segments": segments, "text": " ".join(s["text"] for s in segments)}
