"""On-screen text read from real frames: captions drawn with ffmpeg at known times and places."""

from __future__ import annotations

import pytest
from PIL import Image

from reelscope import synth
from reelscope.analysis import media, pipeline
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
    assert found["texts"] == [] and found["frames_read"] == 1  # every later frame looked the same


def test_text_is_read_from_the_frames_detection_kept_with_the_same_result(read, tmp_path, monkeypatch, model_dir,
                                                                         fall_weights):
    """The vision branch decodes once: detect keeps its samples (JPEG), on-screen text reads those."""
    video, decoded = read
    settings = Settings(model_dir=str(model_dir), yolo_weights=str(fall_weights))
    pipeline.probe(video, tmp_path, settings)
    pipeline.detect(video, tmp_path, settings)

    def no_decoding(*args, **kwargs):
        raise AssertionError("the video was decoded again")

    monkeypatch.setattr(media.ffmpeg, "input", no_decoding)
    pipeline.read_text(video, tmp_path, settings)

    def result(out):
        found = read_json(out / "ocr.json")
        return found["frames_sampled"], found["frames_read"], [(t["text"], t["start"], t["end"]) for t in found["texts"]]

    # the same texts over the same times; the most confident reading (the evidence) may be another
    # sample of the same range: JPEG moves confidences by a little
    assert result(tmp_path) == result(decoded)
    for text in read_json(tmp_path / "ocr.json")["texts"]:
        assert text["start"] <= text["evidence"]["t"] < text["end"]
        assert (tmp_path / text["evidence"]["path"]).is_file()
