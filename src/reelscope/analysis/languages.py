"""The language of each transcript segment, for videos that switch language.

Whisper names one language per 30 s of audio it decodes (and transcribes what it hears in the
language it hears it: French inside an English window comes out in French), and asking it per
segment costs an encoder pass each: 0.7 s per segment on a CPU thread, and wrong on short
segments padded to 30 s (measured: a French sentence taken for Spanish, another for English).
So the segment's own text is classified instead: py3langid (langid's model, shipped in its wheel,
about 0.1 ms a segment), restricted to the languages Whisper knows. A segment with fewer than
MIN_WORDS words, or classified with less than MIN_PROBABILITY, takes the language of the segment
before it (the first ones: of the first that is sure; none sure: Whisper's language).
"""

from __future__ import annotations

from reelscope import models

MIN_WORDS = 4
MIN_PROBABILITY = 0.8


def _identifier():
    from faster_whisper.tokenizer import _LANGUAGE_CODES
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages([code for code in _LANGUAGE_CODES if code in identifier.labels])
    return identifier


def identifier():
    """The process's text language identifier (stateless once loaded: shared by every job)."""
    return models.loaded("language-identifier", _identifier)


def segment_languages(texts: list[str], fallback: str | None) -> list[str | None]:
    """Each text's language (see the module doc for the rules)."""
    sure: list[str | None] = []
    for text in texts:
        language, probability = identifier().classify(text) if len(text.split()) >= MIN_WORDS else (None, 0.0)
        sure.append(language if probability >= MIN_PROBABILITY else None)
    first = next((language for language in sure if language), fallback)
    found, current = [], first
    for language in sure:
        current = language or current
        found.append(current)
    return found


def talk_time(segments: list[dict]) -> list[dict]:
    """[{language, talk_time_s, segments}], most talk first (ties: by code)."""
    found: dict[str, dict] = {}
    for segment in segments:
        if segment.get("language"):
            entry = found.setdefault(segment["language"], {"language": segment["language"], "talk_time_s": 0.0,
                                                           "segments": 0})
            entry["talk_time_s"] = round(entry["talk_time_s"] + segment["end"] - segment["start"], 3)
            entry["segments"] += 1
    return sorted(found.values(), key=lambda entry: (-entry["talk_time_s"], entry["language"]))
