"""The downscale step (renditions, thumbnails, poster) across x264 presets and ffmpeg thread counts.

    .venv/bin/python bench/bench_renditions.py [--keep DIR]

Two generated 60 s 1280x720 H.264 25 fps sources with AAC audio: the stage benchmark's slides
(a cartoon clip, photos, plain colour: bench_stages.py) and camera-like footage (the cartoon with
moving grain at 4 Mb/s, the entropy of a phone's video). The 720p rendition is a stream copy of
both; the 480p one is encoded. Each row runs `media.encode_renditions` in this process, best of
two: wall seconds, CPU seconds of the ffmpeg children (what the branches running beside it on the
same cores lose), the 480p file's size, and its SSIM against the source scaled to 854x480 (lanczos).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import ffmpeg
from bench_stages import build_video

from reelscope import synth
from reelscope.analysis import media
from reelscope.settings import Settings

PRESETS = ("ultrafast", "superfast", "veryfast", "faster")


def camera_like(folder: Path) -> Path:
    path = folder / "camera-like 720p.mp4"
    clip = ffmpeg.input(str(synth.bigbuckbunny_mp4()), stream_loop=-1, t=60)
    video = clip.video.filter("scale", 1280, 720).filter("noise", alls=12, allf="t").filter("fps", 25)
    audio = ffmpeg.input("sine=frequency=300:duration=60", f="lavfi")
    (ffmpeg.output(video, audio, str(path), vcodec="libx264", video_bitrate="4M", preset="fast", pix_fmt="yuv420p",
                   acodec="aac", t=60).global_args("-loglevel", "error").run(overwrite_output=True))
    return path


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def ssim(rendition: Path, source: Path) -> float:
    graph = "[1:v]scale=854:480:flags=lanczos[ref];[0:v][ref]ssim"
    err = subprocess.run(["ffmpeg", "-nostdin", "-i", str(rendition), "-i", str(source), "-lavfi", graph, "-f", "null",
                          "-"], capture_output=True, text=True).stderr
    return float(re.search(r"All:([\d.]+)", err)[1])


def measure(source: Path, settings: Settings, work: Path) -> tuple[float, float, int, float]:
    best = None
    for _ in range(2):
        out = Path(tempfile.mkdtemp(dir=work))
        facts = media.probe(source, settings)
        wall, cpu = time.perf_counter(), children_cpu()
        media.encode_renditions(source, facts, settings, out)
        wall, cpu = time.perf_counter() - wall, children_cpu() - cpu
        if best is None or wall < best[0]:
            best = (wall, cpu, out)
    wall, cpu, out = best
    return wall, cpu, (out / "480p.mp4").stat().st_size, ssim(out / "480p.mp4", source)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keep", type=Path)
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="reelscope-renditions-"))
    folder.mkdir(parents=True, exist_ok=True)
    sources = {"slides": build_video(folder)[0], "camera-like": camera_like(folder)}
    cores = os.cpu_count() or 1
    runs = [(preset, 1) for preset in PRESETS] + [("veryfast", cores)]
    print(f"Sources: 60 s 1280x720 H.264 25 fps + AAC; {cores} cores. 720p: stream copy; 480p: x264, crf 23.\n")
    print("| source | x264 preset | ffmpeg threads | wall s | CPU s | 480p MB | SSIM |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, source in sources.items():
        for preset, threads in runs:
            settings = replace(Settings(), x264_preset=preset, ffmpeg_threads=threads)
            wall, cpu, size, score = measure(source, settings, folder)
            print(f"| {name} | {preset} | {threads} | {wall:.2f} | {cpu:.2f} | {size / 1e6:.2f} | {score:.4f} |",
                  flush=True)


if __name__ == "__main__":
    main()
