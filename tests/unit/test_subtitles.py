"""Subtitle rules on hand-built transcripts: bounded lines, splits on word times, no overlap."""

from __future__ import annotations

import html

import srt
import webvtt

from reelscope.analysis import subtitles
from reelscope.settings import Settings


def _words(text: str, start: float, step: float) -> list[dict]:
    return [{"word": w, "start": round(start + i * step, 3), "end": round(start + (i + 1) * step, 3)}
            for i, w in enumerate(text.split())]


def _check_readable(cues, settings):
    for cue in cues:
        assert 1 <= len(cue.lines) <= settings.subtitle_max_lines
        assert all(0 < len(line) <= settings.subtitle_max_chars for line in cue.lines)
        assert cue.end_ms > cue.start_ms
        assert cue.end_ms - cue.start_ms <= settings.subtitle_max_cue_s * 1000 + 1
    for before, after in zip(cues, cues[1:]):
        assert before.end_ms <= after.start_ms


def test_long_segment_is_split_on_word_times():
    settings = Settings()
    text = ("reelscope turns raw video into structured searchable data so that analysts stop scrubbing "
            "through footage by hand and jump straight to the moments that matter for their case")
    segment = {"start": 0.0, "end": 15.0, "text": text, "words": _words(text, 0.0, 0.5)}
    cues = subtitles.build_cues({"segments": [segment]}, settings)
    _check_readable(cues, settings)
    assert len(cues) >= 3
    assert " ".join(" ".join(c.lines) for c in cues) == text  # nothing lost, order kept
    # Each cue starts exactly at its first word's start time.
    first_words = [c.lines[0].split()[0] for c in cues]
    starts = {w["word"]: w["start"] for w in reversed(segment["words"])}
    assert [c.start_ms for c in cues] == [round(starts[w] * 1000) for w in first_words]


def test_a_cues_two_lines_are_balanced():
    """Greedy filling at 42 characters gives "Seven bright kites drifted over the green" and
    "meadow."; balanced, each line holds about half."""
    settings = Settings()
    text = "Seven bright kites drifted over the green meadow."
    (cue,) = subtitles.build_cues({"segments": [{"start": 0.0, "end": 3.0, "text": text, "words": _words(text, 0, 0.3)}]},
                                  settings)
    _check_readable([cue], settings)
    assert cue.lines == ("Seven bright kites drifted", "over the green meadow.")
    three = "Each line of a cue holds about as many characters as the others, so no reader meets a lone last word."
    settings = Settings(subtitle_max_lines=3, subtitle_max_cue_s=30)
    (cue,) = subtitles.build_cues({"segments": [{"start": 0.0, "end": 9.0, "text": three, "words": _words(three, 0, 0.3)}]},
                                  settings)
    _check_readable([cue], settings)
    assert cue.lines == ("Each line of a cue holds about as", "many characters as the others, so",
                         "no reader meets a lone last word.")  # greedy: 38, 38 and 23 characters
    assert " ".join(cue.lines) == three


def test_overlapping_segments_give_monotonic_cues():
    segments = [{"start": 0.0, "end": 2.0, "text": "first part", "words": _words("first part", 0.0, 1.0)},
                {"start": 1.5, "end": 3.0, "text": "second part", "words": _words("second part", 1.5, 0.75)},
                {"start": 1.5, "end": 1.5, "text": "zero", "words": _words("zero", 1.5, 0.0)}]
    cues = subtitles.build_cues({"segments": segments}, Settings())
    _check_readable(cues, Settings())
    assert [c.lines for c in cues] == [("first part",), ("second part",), ("zero",)]


def test_segment_without_word_times_and_a_very_long_word():
    settings = Settings(subtitle_max_chars=10, subtitle_max_lines=2)
    segment = {"start": 10.0, "end": 14.0, "text": "see https://example.invalid/very/long/path now"}
    cues = subtitles.build_cues({"segments": [segment]}, settings)
    _check_readable(cues, settings)
    assert cues[0].start_ms == 10_000
    assert cues[-1].end_ms == max(14_000, cues[-1].start_ms + 800)  # the last cue is held for 0.8 s
    assert "".join("".join(c.lines) for c in cues).replace(" ", "") == segment["text"].replace(" ", "")


def test_short_cue_is_held_but_not_into_the_next():
    segments = [{"start": 1.0, "end": 1.1, "text": "Hi", "words": _words("Hi", 1.0, 0.1)},
                {"start": 1.5, "end": 2.0, "text": "there", "words": _words("there", 1.5, 0.5)}]
    cues = subtitles.build_cues({"segments": segments}, Settings(subtitle_min_cue_s=0.8))
    assert (cues[0].start_ms, cues[0].end_ms) == (1000, 1500)
    assert (cues[1].start_ms, cues[1].end_ms) == (1500, 2300)


def test_formats_parse_back_with_markup_escaped(tmp_path):
    text = "Tom & Jerry say <hello> --> bye"
    cues = subtitles.build_cues({"segments": [{"start": 3661.5, "end": 3663.0, "text": text}]}, Settings())
    srt_text, vtt_text = subtitles.to_srt(cues), subtitles.to_vtt(cues)
    assert "01:01:01,500 --> " in srt_text and "01:01:01.500 --> " in vtt_text
    parsed = list(srt.parse(srt_text))
    assert " ".join(p.content.replace("\n", " ") for p in parsed) == "Tom & Jerry say <hello> -> bye"
    (tmp_path / "s.vtt").write_text(vtt_text)
    captions = webvtt.read(str(tmp_path / "s.vtt")).captions
    assert "&amp;" in vtt_text and "&lt;hello&gt;" in vtt_text
    assert html.unescape(" ".join(c.text.replace("\n", " ") for c in captions)) == "Tom & Jerry say <hello> -> bye"
