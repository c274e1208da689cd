"""Shots from real decodes of generated videos whose cuts and fades we placed, frame by frame."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from reelscope import synth
from reelscope.analysis import pipeline
from reelscope.artifacts import read_json
from reelscope.settings import Settings

# (source, seconds[, fade]) at 25 fps: every slide starts on a whole frame.
SLIDES = [(synth.zidane_jpg(), 3.0), (synth.bus_jpg(), 2.52), ("color:gray", 2.0), (synth.bigbuckbunny_mp4(), 3.0),
          (synth.zidane_jpg(), 3.0, 0.8), (synth.bus_jpg(), 3.0, 0.8), ("color:black", 1.0), (synth.zidane_jpg(), 2.0)]
CUTS = [3.0, 5.52, 7.52, 10.52, 17.52]  # into the fade-in at 10.52 is still a cut: the cartoon ends on a lit frame
FADE = 13.52  # zidane fades out to black, the bus fades in from it


@pytest.fixture(scope="module")
def cut_video(media_dir):
    return synth.slideshow(media_dir / "cuts.mp4", SLIDES)


@pytest.fixture(scope="module")
def shot_run(cut_video, tmp_path_factory, model_dir, fall_weights):
    """The pipeline's way: detect decodes once and leaves the signal; shots reads it."""
    settings = Settings(model_dir=str(model_dir), yolo_weights=str(fall_weights))
    out = tmp_path_factory.mktemp("shots-out")
    pipeline.probe(cut_video, out, settings)
    published = pipeline.detect(cut_video, out, settings)
    assert "frame-signal.json" in published
    pipeline.find_shots(cut_video, out, settings)
    return out, settings


def test_cuts_land_on_their_frame_and_the_fade_within_half_a_second(shot_run):
    out, _ = shot_run
    shots = read_json(out / "shots.json")["shots"]
    starts = [(shot["start"], shot["starts_with"]) for shot in shots]
    assert starts[0] == (0.0, "start")
    cuts = [t for t, kind in starts if kind == "cut"]
    fades = [t for t, kind in starts if kind == "fade"]
    assert len(cuts) == len(CUTS) and len(fades) == 1, starts
    assert cuts == pytest.approx(CUTS, abs=0.04)  # one frame at 25 fps
    assert fades[0] == pytest.approx(FADE, abs=0.5)
    assert shots[-1]["end"] == pytest.approx(sum(slide[1] for slide in SLIDES), abs=0.05)
    assert all(a["end"] == b["start"] for a, b in zip(shots, shots[1:]))


def test_each_shot_has_a_keyframe_from_inside_it(shot_run):
    out, _ = shot_run
    shots = read_json(out / "shots.json")["shots"]
    for shot in shots:
        assert shot["start"] < shot["keyframe"]["t"] < shot["end"]
        with Image.open(out / shot["keyframe"]["path"]) as image:
            assert image.size == (320, 180)
    gray = next(s for s in shots if s["start"] == pytest.approx(5.52, abs=0.04))  # the plain gray slide
    pixels = np.asarray(Image.open(out / gray["keyframe"]["path"]).convert("L"), float)
    assert abs(pixels.mean() - 128) < 8 and pixels.std() < 4


def test_the_shots_command_decodes_by_itself_to_the_same_shots(shot_run, cut_video, tmp_path):
    out, settings = shot_run
    alone = tmp_path / "alone"
    pipeline.probe(cut_video, alone, settings)
    pipeline.find_shots(cut_video, alone, settings)  # no frame-signal.json here: shots decodes the video
    assert read_json(alone / "shots.json") == read_json(out / "shots.json")


def test_a_still_talking_head_is_one_shot(media_dir, tmp_path, speech_video):
    video, _ = speech_video
    settings = Settings()
    still = synth.slideshow(media_dir / "talking-head.mp4", [(synth.zidane_jpg(), 6.0)], audio=media_dir / "speech.wav")
    pipeline.probe(still, tmp_path, settings)
    pipeline.find_shots(still, tmp_path, settings)
    assert [(s["start"], s["end"]) for s in read_json(tmp_path / "shots.json")["shots"]] == [(0.0, 6.0)]


def test_a_person_range_ends_at_a_hard_cut(people_video, tmp_path, model_dir, fall_weights):
    """people.mp4: black, bus (2-3 s), zidane (3-4 s), black; people in both photos. Without shots
    one range spans 2-4 s; with them it ends at the bus-to-zidane cut and another starts there."""
    settings = Settings(model_dir=str(model_dir), yolo_weights=str(fall_weights), detect_fps=4.0)
    pipeline.probe(people_video, tmp_path, settings)
    pipeline.detect(people_video, tmp_path, settings)
    pipeline.find_shots(people_video, tmp_path, settings)
    assert [s["start"] for s in read_json(tmp_path / "shots.json")["shots"]] == [0.0, 2.0, 3.0, 4.0]
    pipeline.make_entities(people_video, tmp_path / "detections.json", tmp_path, settings)
    entities = read_json(tmp_path / "entities.json")
    assert entities["rules"]["cuts_split_ranges"] is True
    spans = sorted((e["start"], e["end"]) for e in entities["entities"])
    assert spans[0][0] == pytest.approx(2.0, abs=0.25) and spans[-1][1] == pytest.approx(4.0, abs=0.25)
    assert not any(start < 3.0 < end for start, end in spans), spans
    assert any(end == 3.0 for _, end in spans) and any(start == 3.0 for start, _ in spans), spans


def test_people_panned_across_the_frame_keep_their_track(media_dir, tmp_path, model_dir, fall_weights):
    """zidane.jpg (two people) at half size slides 60 px a second across a gray 1280x720 frame for
    8 s: at 1 fps each person moves 60 px between samples, and keeps one track id throughout."""
    import ffmpeg

    from reelscope.analysis.media import file_url

    panned = media_dir / "panned.mp4"
    background = ffmpeg.input("color=c=gray:s=1280x720:r=25:d=8", f="lavfi")
    photo = ffmpeg.input(file_url(synth.zidane_jpg()), loop=1, framerate=25, t=8).filter("scale", 640, 360)
    (background.overlay(photo, x="100+60*t", y=180)
     .output(file_url(panned), vcodec="libx264", preset="veryfast", pix_fmt="yuv420p", t=8)
     .global_args("-loglevel", "error").run(overwrite_output=True))
    settings = Settings(model_dir=str(model_dir), yolo_weights=str(fall_weights))
    pipeline.probe(panned, tmp_path, settings)
    pipeline.detect(panned, tmp_path, settings)
    pipeline.make_tracks(tmp_path / "detections.json", tmp_path, settings)
    boxes = {f["t"]: f["detections"] for f in read_json(tmp_path / "detections.json")["frames"]}
    tracks = sorted(read_json(tmp_path / "tracks.json")["tracks"], key=lambda t: -t["frame_count"])
    assert [t["frame_count"] for t in tracks[:2]] == [8, 8], [(t["label"], t["frame_count"]) for t in tracks]
    for track in tracks[:2]:
        (first_t, first_j), (last_t, last_j) = track["samples"][0], track["samples"][-1]
        moved = boxes[last_t][last_j]["box"][0] - boxes[first_t][first_j]["box"][0]
        assert moved == pytest.approx(420, abs=40)  # 7 s at 60 px/s, rightwards
