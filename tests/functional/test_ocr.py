"""On-screen text read from real frames: captions drawn with ffmpeg at known times and places."""

from __future__ import annotations

import math

import pytest
from PIL import Image

from reelscope import synth
from reelscope.analysis import ocr, pipeline
from reelscope.analysis.text_entities import normalized
from reelscope.artifacts import read_json
from reelscope.settings import Settings

# (text, shown from, to, x, y, font px) over a cartoon and then a photo: a busy background
CAPTIONS = [("NORTH GATE 47", 1.0, 5.0, 80, 560, 64), ("Harbor closes at 18:30", 3.0, 9.0, 640, 60, 32)]


def cer(truth: str, read: str) -> float:
    import jiwer

    return jiwer.cer(truth, read)


@pytest.fixture(scope="module")
def read(media_dir, tmp_path_factory):
    background = synth.slideshow(media_dir / "busy.mp4", [(synth.bigbuckbunny_mp4(), 5.0), (synth.zidane_jpg(), 6.0)])
    video = synth.captioned(background, media_dir / "captions.mp4", CAPTIONS)
    out = tmp_path_factory.mktemp("ocr-out")
    pipeline.probe(video, out, Settings())
    pipeline.read_text(video, out, Settings())
    return video, out


def test_each_caption_is_read_once_with_its_time_range(read):
    _, out = read
    found = read_json(out / "ocr.json")
    texts = found["texts"]
    assert len(texts) == len(CAPTIONS), [t["text"] for t in texts]
    for (truth, shown, gone, *_), text in zip(CAPTIONS, sorted(texts, key=lambda t: t["start"])):
        assert cer(truth, text["text"]) <= 0.1, text["text"]
        assert text["start"] == pytest.approx(shown, abs=1.0)  # one sampling step at 1 fps
        assert text["end"] == pytest.approx(gone, abs=1.0)
        assert text["kind"] == "text" and text["peak_confidence"] >= 0.8
    assert found["frames_read"] <= found["frames_sampled"]


def test_evidence_frames_show_the_caption_boxed_where_it_was_drawn(read):
    _, out = read
    for text in read_json(out / "ocr.json")["texts"]:
        caption = next(c for c in CAPTIONS if cer(c[0], text["text"]) <= 0.1)
        x1, y1, x2, y2 = text["evidence"]["box"]
        assert x1 == pytest.approx(caption[3], abs=20) and y1 == pytest.approx(caption[4], abs=20)
        assert 0.6 * caption[5] <= y2 - y1 <= 2 * caption[5]  # one line of that size
        with Image.open(out / text["evidence"]["path"]) as image:
            assert image.size == (1280, 720)


def test_a_frame_without_text_gives_no_text(tmp_path, speech_video):
    video, _ = speech_video  # plain gray
    pipeline.probe(video, tmp_path, Settings())
    pipeline.read_text(video, tmp_path, Settings())
    found = read_json(tmp_path / "ocr.json")
    # every later frame looked the same: only the close look every FULL_READ_S read one
    assert found["texts"] == [] and found["frames_read"] == math.ceil(found["frames_sampled"] / ocr.FULL_READ_S)


EPOCH = 1700000000  # 2023-11-14 22:13:20 UTC
CAPTION = "Suspect left by the north gate"


@pytest.fixture(scope="module")
def clocked(media_dir, tmp_path_factory):
    """A moving test pattern (its own running timecode in a corner) with a burned-in date-time clock
    that jumps two hours at 12 s (a recorder restart), and a caption shown twice."""
    import ffmpeg

    from reelscope.analysis.media import GLOBAL_ARGS

    background = media_dir / "pattern.mp4"
    (ffmpeg.input("testsrc2=s=1280x720:r=25:d=24", f="lavfi").output(str(background), vcodec="libx264",
                                                                      preset="veryfast", t=24)
     .global_args(*GLOBAL_ARGS).run(overwrite_output=True, capture_stdout=True, capture_stderr=True))
    video = synth.captioned(background, media_dir / "clocked.mp4", [
        (synth.clock(EPOCH, 0), 0, 12, 760, 650, 36), (synth.clock(EPOCH + 7200, 12), 12, 24, 760, 650, 36),
        (CAPTION, 2, 7, 100, 300, 40), (CAPTION, 12, 18, 100, 300, 40)])
    out = tmp_path_factory.mktemp("clocked")
    pipeline.probe(video, out, Settings())
    pipeline.read_text(video, out, Settings())
    return read_json(out / "ocr.json")


def test_a_burned_in_clock_is_one_overlay_and_gives_the_wall_clock_in_two_pieces(clocked):
    (clock,) = [o for o in clocked["overlays"] if o["first_reading"].startswith("2023")]
    assert (clock["start"], clock["end"]) == (0.0, 24.0)
    assert clock["first_reading"] == "2023-11-14 22:13:20" and clock["last_reading"].startswith("2023-11-15 00:13:3")
    assert not any("2023" in t["text"] for t in clocked["texts"])  # no text entity a second
    wall = clocked["wall_clock"]
    assert wall["start"] == "2023-11-14T22:13:20"
    assert [p["video_start"] for p in wall["pieces"]] == [0.0, pytest.approx(12.0, abs=1.0)]
    assert wall["pieces"][1]["wall_start"] in ("2023-11-15T00:13:20", "2023-11-15T00:13:21")
    # the pattern's own timecode is an overlay too, and is no clock
    assert any(o["first_reading"].startswith("00:00:0") for o in clocked["overlays"])


def test_a_caption_shown_twice_over_a_moving_background_is_two_texts(clocked):
    shown = [(t["text"], t["start"], t["end"]) for t in clocked["texts"] if cer(CAPTION, t["text"]) <= 0.1]
    assert [(text, start, end) for text, start, end in shown] == [(CAPTION, 2.0, 8.0), (CAPTION, 12.0, 19.0)]
    assert sum(r["of"] == 0 for r in clocked["readings"]) >= 5  # each reading kept for audit


def test_a_line_whose_pixels_did_not_change_keeps_its_reading_unread():
    """A frame read again (the picture around moved) reads only the lines whose crops changed."""
    import cv2
    import numpy as np

    from reelscope.analysis import ocr

    frame = np.full((720, 1280, 3), 40, np.uint8)
    cv2.putText(frame, "NORTH GATE 47", (80, 200), cv2.FONT_HERSHEY_SIMPLEX, 2.0, (255, 255, 255), 4)
    cv2.putText(frame, "12:00:05", (80, 500), cv2.FONT_HERSHEY_SIMPLEX, 2.0, (255, 255, 255), 4)
    reader = ocr.load_reader(1)
    recognized = []
    recognize = reader.text_rec
    reader.text_rec = lambda crops: (recognized.append(len(crops)), recognize(crops))[1]
    first = ocr._read_frame(reader, frame)
    assert sorted(text for _, text, _, _ in first) == ["12:00:05", "NORTH GATE 47"] and recognized == [2]

    again = ocr._read_frame(reader, frame.copy(), first)  # nothing changed: nothing recognized
    assert [(q, t, c) for q, t, c, _ in again] == [(q, t, c) for q, t, c, _ in first] and recognized == [2]

    ticked = frame.copy()
    cv2.rectangle(ticked, (60, 430), (700, 540), (40, 40, 40), -1)
    cv2.putText(ticked, "12:00:06", (80, 500), cv2.FONT_HERSHEY_SIMPLEX, 2.0, (255, 255, 255), 4)
    later = ocr._read_frame(reader, ticked, again)  # only the clock's line is read
    assert sorted(text for _, text, _, _ in later) == ["12:00:06", "NORTH GATE 47"] and recognized == [2, 1]


BUSY_CAPTION = "Loading dock camera three"


def test_a_clock_over_a_moving_picture_is_one_overlay_and_its_pieces_no_text(media_dir, tmp_path):
    """A date-time clock drawn straight on a busy moving picture (no box behind it), a caption that
    comes and goes three times: the detector misses the clock in most frames and boxes pieces of it
    and of the caption apart. One overlay to the last frame, the wall clock to the
    second, no piece of the clock as a text, the caption three texts with its reading."""
    background = synth.moving_texture(media_dir / "texture.mp4", 75.0)
    shown = [(0, 8), (30, 38), (60, 68)]
    video = synth.captioned(background, media_dir / "texture-clocked.mp4", [
        (synth.clock(EPOCH), 0, 75, 20, 20, 32), *[(BUSY_CAPTION, start, end - 0.01, 380, 600, 40) for start, end in shown]],
        boxed=False)
    pipeline.probe(video, tmp_path, Settings())
    pipeline.read_text(video, tmp_path, Settings())
    found = read_json(tmp_path / "ocr.json")
    (clock,) = found["overlays"]
    # found at the first close look whose detection sees it (every FULL_READ_S), followed to the end
    assert clock["start"] <= 2 * ocr.FULL_READ_S and clock["end"] == 75.0
    assert found["wall_clock"]["start"] == "2023-11-14T22:13:20"
    assert [(t["start"], t["end"]) for t in found["texts"]] == [(float(start), float(end)) for start, end in shown]
    assert all(cer(normalized(BUSY_CAPTION), normalized(t["text"])) <= 0.1 for t in found["texts"]), found["texts"]
