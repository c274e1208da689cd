"""transcript.json -> readable SubRip (.srt) and WebVTT (.vtt) cues.

Rules, applied in this order:
  1. A cue never spans two transcript segments (segments are Whisper's phrases).
  2. Inside a segment, words are packed greedily into a cue while the text wraps into at most
     `subtitle_max_lines` lines of at most `subtitle_max_chars` characters and the cue lasts at
     most `subtitle_max_cue_s`; the next word opens a new cue. Word timings give cue times; a
     segment without word timings spreads its time over its words by character count.
     A single word longer than a line is cut into line-sized pieces. A cue's lines are balanced:
     as many as greedy wrapping needs, as even in length as they can be.
  3. A segment with a speaker (speakers.attribute) gives its cues that speaker: WebVTT voice spans
     (<v S1>) always, a leading "S1: " in SubRip only when two or more speakers talk.
  4. Times are whole milliseconds; each cue starts no earlier than the previous one ends (no
     overlap, monotonic), lasts at least 1 ms, and a short cue is held up to
     `subtitle_min_cue_s` when that does not run into the next cue.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

from reelscope.settings import Settings


@dataclass(frozen=True)
class Cue:
    start_ms: int
    end_ms: int
    lines: tuple[str, ...]
    speaker: str | None = None


def _segment_words(segment: dict, max_chars: int) -> list[tuple[str, float, float]]:
    words = [(w["word"], w["start"], w["end"]) for w in segment.get("words") or [] if w["word"].strip()]
    if not words:
        tokens = segment["text"].split()
        total = sum(len(t) for t in tokens) or 1
        span, cursor = segment["end"] - segment["start"], segment["start"]
        for token in tokens:
            step = span * len(token) / total
            words.append((token, cursor, cursor + step))
            cursor += step
    pieces = []
    for text, start, end in words:
        text = " ".join(text.split()).replace("-->", "->")
        pieces += [(text[i: i + max_chars], start, end) for i in range(0, len(text), max_chars)]
    return pieces


def _wrap(words: list[str], max_chars: int) -> list[str]:
    return textwrap.wrap(" ".join(words), max_chars, break_long_words=True, break_on_hyphens=False)


def _balanced(words: list[str], max_chars: int) -> list[str]:
    """The cue's text in as many lines as greedy wrapping needs, but the lines as even as they can
    be: the narrowest width that needs no more lines (greedy filling leaves "meadow." alone on a
    second line)."""
    greedy = _wrap(words, max_chars)
    if len(greedy) < 2:
        return greedy
    text_chars = len(" ".join(words))
    narrowest = max(max(map(len, words)), -(-text_chars // len(greedy)))
    return next((lines for width in range(narrowest, max_chars) if len(lines := _wrap(words, width)) <= len(greedy)),
                greedy)


def build_cues(transcript: dict, settings: Settings) -> list[Cue]:
    max_chars, max_lines, max_s = settings.subtitle_max_chars, settings.subtitle_max_lines, settings.subtitle_max_cue_s
    raw: list[tuple[float, float, list[str], str | None]] = []
    for segment in transcript.get("segments", []):
        speaker = segment.get("speaker")
        current: list[tuple[str, float, float]] = []
        for word in _segment_words(segment, max_chars):
            candidate = current + [word]
            too_long = len(_wrap([w[0] for w in candidate], max_chars)) > max_lines
            if current and (too_long or word[2] - current[0][1] > max_s):
                raw.append((current[0][1], current[-1][2], _balanced([w[0] for w in current], max_chars), speaker))
                candidate = [word]
            current = candidate
        if current:
            raw.append((current[0][1], current[-1][2], _balanced([w[0] for w in current], max_chars), speaker))
    raw.sort(key=lambda cue: cue[0])

    starts = [max(0, round(cue[0] * 1000)) for cue in raw]
    cues: list[Cue] = []
    for i, (_, end, lines, speaker) in enumerate(raw):
        start_ms = max(starts[i], cues[-1].end_ms if cues else 0)
        end_ms = max(round(end * 1000), start_ms + 1)
        next_start = starts[i + 1] if i + 1 < len(raw) else None
        held = start_ms + round(settings.subtitle_min_cue_s * 1000)
        if end_ms < held:
            end_ms = held if next_start is None else max(end_ms, min(held, next_start))
        cues.append(Cue(start_ms, end_ms, tuple(lines), speaker))
    return cues


def _timestamp(ms: int, separator: str) -> str:
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{separator}{millis:03d}"


def _vtt_escape(line: str) -> str:
    return line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_srt(cues: list[Cue]) -> str:
    named = len({c.speaker for c in cues if c.speaker}) >= 2

    def lines(c: Cue) -> list[str]:
        return [f"{c.speaker}: {c.lines[0]}", *c.lines[1:]] if named and c.speaker and c.lines else list(c.lines)

    return "".join(f"{n}\n{_timestamp(c.start_ms, ',')} --> {_timestamp(c.end_ms, ',')}\n" + "\n".join(lines(c)) + "\n\n"
                   for n, c in enumerate(cues, 1))


def to_vtt(cues: list[Cue]) -> str:
    def text(c: Cue) -> str:
        body = "\n".join(map(_vtt_escape, c.lines))
        return f"<v {_vtt_escape(c.speaker)}>{body}</v>" if c.speaker else body

    return "WEBVTT\n\n" + "".join(
        f"{_timestamp(c.start_ms, '.')} --> {_timestamp(c.end_ms, '.')}\n" + text(c) + "\n\n" for c in cues)
