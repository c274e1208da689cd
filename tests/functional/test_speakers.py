"""Speaker turns on voices whose turns we chose: espeak-ng voices taking turns, real Whisper and
the real speaker encoder; the truth is which voice read which sentence, and where it was audible."""

from __future__ import annotations

import io

import ffmpeg
import numpy as np
import pytest
import srt
import webvtt
from pypdf import PdfReader

from reelscope.analysis import pipeline, report_pdf, reports, speakers
from reelscope.artifacts import read_json
from reelscope.settings import Settings

from ..conftest import MAN, THIRD, WOMAN, alternating, talk

BOUNDARY_S = 0.5


def run_speech(video, out, settings: Settings) -> None:
    pipeline.probe(video, out, settings)
    for step in ("transcribe", "speakers", "subtitles"):
        pipeline.STAGES[step](video, out, settings)


@pytest.fixture(scope="module")
def speech_settings(model_dir):
    return Settings(model_dir=str(model_dir))


@pytest.mark.parametrize("voices", [[MAN, WOMAN], [MAN], [MAN, WOMAN, THIRD]], ids=["two", "one", "three"])
def test_each_turn_is_given_its_voice(voices, media_dir, tmp_path, speech_settings):
    video, spoken = talk(media_dir, f"turns-{len(voices)}", alternating(voices))
    run_speech(video, tmp_path, speech_settings)
    found = read_json(tmp_path / "speakers.json")
    assert [v["id"] for v in found["speakers"]] == [f"S{i + 1}" for i in range(len(voices))]
    truth = [f"S{voices.index(v) + 1}" for v in alternating(voices)]  # ids in order of first appearance
    if len(voices) == 1:
        assert [t["speaker"] for t in found["turns"]] == ["S1"]  # pauses under speaker_turn_gap_s: one turn
        assert found["turns"][0]["start"] == pytest.approx(spoken[0].start, abs=BOUNDARY_S)
        assert found["turns"][0]["end"] == pytest.approx(spoken[-1].end, abs=BOUNDARY_S)
    else:
        assert [t["speaker"] for t in found["turns"]] == truth
        for turn, sentence in zip(found["turns"], spoken, strict=True):
            assert turn["start"] == pytest.approx(sentence.start, abs=BOUNDARY_S)
            assert turn["end"] == pytest.approx(sentence.end, abs=BOUNDARY_S)
    first = (tmp_path / "speakers.json").read_bytes()
    pipeline.STAGES["speakers"](video, tmp_path, speech_settings)  # run again: the same bytes
    assert (tmp_path / "speakers.json").read_bytes() == first
    talk_time = sum(s.end - s.start for s in spoken)
    assert sum(v["talk_time_s"] for v in found["speakers"]) == pytest.approx(talk_time, abs=BOUNDARY_S * len(spoken))

    cues = list(srt.parse((tmp_path / "subtitles.srt").read_text(encoding="utf-8")))
    vtt = list(webvtt.read(str(tmp_path / "subtitles.vtt")))
    for cue, caption in zip(cues, vtt, strict=True):
        sentence = next(i for i, s in enumerate(spoken) if s.start - BOUNDARY_S <= cue.start.total_seconds() <= s.end)
        assert caption.voice == truth[sentence]  # every cue names the voice that is audible
        assert cue.content.startswith(f"{truth[sentence]}: ") == (len(voices) > 1)  # SubRip: only when several


def test_the_report_and_the_exports_name_the_speakers(media_dir, tmp_path, speech_settings):
    video, spoken = talk(media_dir, "turns-2", alternating([MAN, WOMAN]))
    run_speech(video, tmp_path, speech_settings)
    steps = {name: {"status": "SUCCEEDED"} for name in ("probe", "transcribe", "speakers", "subtitles")}
    report = reports.build_report(tmp_path, {"file_name": "talk.mp4", "sha256": "0" * 64}, steps, "SUCCEEDED",
                                  names={"S2": "Inspector Lee"})
    assert [(v["id"], v["name"], v["turns"]) for v in report["speakers"]] == [("S1", "S1", 3), ("S2", "Inspector Lee", 3)]
    assert [s["speaker"] for s in report["transcript"]] == ["S1", "S2"] * 3
    rows = reports.transcript_csv(report).splitlines()
    assert rows[0].startswith("segment,start,end,speaker,speaker_name,language,text")
    assert rows[2].split(",")[3:5] == ["S2", "Inspector Lee"]
    pdf = report_pdf.report_pdf(report, tmp_path)
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "Speakers" in text and "Inspector Lee: I saw it too" in text


def test_silence_music_and_a_single_word_find_no_one(media_dir, tmp_path, speech_settings):
    sounds = {"silence": "anullsrc=sample_rate=44100", "music": "sine=frequency=440:sample_rate=44100"}
    videos = {name: media_dir / f"{name}.mp4" for name in sounds}
    for name, source in sounds.items():
        (ffmpeg.output(ffmpeg.input("color=c=black:s=160x120:r=10", f="lavfi", t=6).video,
                       ffmpeg.input(source, f="lavfi", t=6).audio, str(videos[name]), vcodec="libx264", acodec="aac", t=6)
         .overwrite_output().run(quiet=True))
    videos["word"], _ = talk(media_dir, "one-word", [MAN], sentences=["Hello."])
    for name, video in videos.items():
        out = tmp_path / name
        run_speech(video, out, speech_settings)
        found = read_json(out / "speakers.json")
        assert found["speakers"] == [] and found["turns"] == [], name
        assert found["skipped_reason"], name


def test_clustering_in_blocks_finds_the_same_voices_within_bounded_memory():
    """Simulated length: 20,000 prints of three voices (noisy copies of three directions) cluster
    into three in blocks, never holding a prints² matrix (3.2 GB as float64)."""
    import tracemalloc

    rng = np.random.default_rng(7)
    centres = rng.normal(size=(3, 256))
    truth = rng.integers(0, 3, 20_000)
    prints = centres[truth] + rng.normal(scale=0.35, size=(20_000, 256))
    prints = (prints / np.linalg.norm(prints, axis=1, keepdims=True)).astype(np.float32)
    tracemalloc.start()
    labels = speakers.cluster(prints, np.ones(len(prints)), threshold=0.5)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 200 * 2**20
    mapping = {int(t): int(label) for t, label in zip(truth, labels)}
    assert len(set(labels)) == 3 and all(mapping[int(t)] == label for t, label in zip(truth, labels))
    small = speakers.cluster(prints[:900], np.ones(900), threshold=0.5, block=100)  # blocks of 100 and 900 at once
    assert (small == speakers.cluster(prints[:900], np.ones(900), threshold=0.5)).all()


def test_a_segment_spanning_a_change_of_speaker_is_split_there():
    words = [{"word": w, "start": float(i), "end": i + 0.5} for i, w in enumerate(["yes", "sir", "go", "ahead"])]
    segments = [{"id": 0, "start": 0.0, "end": 3.5, "text": "Yes sir. Go ahead.", "words": words}]
    turns = [{"speaker": "S1", "start": 0.0, "end": 1.6, "voiced_s": 1.6},
             {"speaker": "S2", "start": 1.9, "end": 3.6, "voiced_s": 1.7}]
    split = speakers.attribute(segments, turns)
    assert [(s["id"], s["speaker"], s["text"], s["start"], s["end"]) for s in split] == [
        (0, "S1", "yes sir", 0.0, 1.5), (1, "S2", "go ahead", 2.0, 3.5)]
    assert speakers.attribute(segments, []) == segments  # no speakers: the transcript as it is
    assert speakers.summary(turns + [{"speaker": "S1", "start": 4.0, "end": 5.0, "voiced_s": 1.0}]) == [
        {"id": "S1", "talk_time_s": 2.6, "turns": 2, "first_s": 0.0},
        {"id": "S2", "talk_time_s": 1.7, "turns": 1, "first_s": 1.9}]


def test_a_stretch_too_short_for_a_print_takes_the_speaker_starting_nearest():
    """Prints of two voices (orthogonal directions); stretches with no print of their own go to
    the printed stretch whose start is nearest, before or after them."""
    a, b = np.eye(256, dtype=np.float32)[0], np.eye(256, dtype=np.float32)[1]
    regions = [(0.0, 0.4, None), (1.0, 3.0, a), (3.5, 3.8, None), (4.0, 6.0, b), (9.0, 9.5, None), (20.0, 20.3, None)]
    turns = speakers.speaker_turns(regions, Settings(speaker_turn_gap_s=0.1))
    assert [(t["speaker"], t["start"]) for t in turns] == [("S1", 0.0), ("S1", 1.0), ("S2", 3.5), ("S2", 4.0),
                                                           ("S2", 9.0), ("S2", 20.0)]
