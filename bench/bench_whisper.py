"""Whisper's precision and beam against accuracy and time, on speech whose words are known.

    .venv/bin/python bench/bench_whisper.py [--keep DIR]

Clips made here with espeak-ng over a black picture: English of 12 s (two sentences) and of about
90 s (bench_stages' paragraph, three times), French of about 60 s. Each runs through
`reelscope transcribe` (CTranslate2, the bundled base model) at every precision and beam below,
each a process of its own. Printed per clip and setting: WER against the spoken text, wall and CPU
seconds (model load included, as a Batch job pays it).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from bench_e2e import run
from bench_stages import PARAGRAPH, transcript_quality

from reelscope import synth

FRENCH = [
    "Bonjour, nous sommes au port ce matin.",
    "Le bateau de pêche arrive à huit heures.",
    "Les enfants jouent sur la plage avec leur chien.",
    "Il fait beau, mais le vent souffle fort sur la côte.",
    "La boulangerie ouvre ses portes avant le lever du soleil.",
    "Le marché du samedi attire beaucoup de monde.",
]
CLIPS = {"English 12 s": (PARAGRAPH[:2], "en-us"), "English 90 s": (PARAGRAPH * 3, "en-us"), "French 60 s": (FRENCH * 2, "fr")}
SETTINGS = [(compute, beam) for compute in ("int8", "int8_float32", "float32") for beam in (2, 5)]


def clip(folder: Path, name: str, sentences: list[str], voice: str) -> tuple[Path, list]:
    wav = folder / f"{name}.wav"
    spoken = synth.speech_track(sentences, wav, lead_s=1.0, gap_s=1.0, voice=voice)
    length = spoken[-1].end + 1.0
    return synth.slideshow(folder / f"{name}.mp4", [("color:black", length)], size=(640, 360), fps=25, audio=wav), spoken


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keep", type=Path)
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="reelscope-whisper-"))
    folder.mkdir(parents=True, exist_ok=True)
    print("| clip | compute type | beam | WER | wall s | CPU s |")
    print("|---|---|---:|---:|---:|---:|")
    for name, (sentences, voice) in CLIPS.items():
        video, spoken = clip(folder, name.replace(" ", "-"), sentences, voice)
        for compute, beam in SETTINGS:
            out = folder / f"{video.stem}-{compute}-{beam}"
            env = {"REELSCOPE_WHISPER_COMPUTE_TYPE": compute, "REELSCOPE_WHISPER_BEAM_SIZE": str(beam),
                   "REELSCOPE_MODEL_DIR": str(folder / "models")}
            elapsed, cpu, _, _ = run([sys.executable, "-m", "reelscope.cli", "transcribe", str(video), "--out", str(out)],
                                     {**os.environ, **env})
            quality = transcript_quality(out / "transcript.json", spoken).split(",")[0].removeprefix("WER ")
            print(f"| {name} | {compute} | {beam} | {quality} | {elapsed:.1f} | {cpu:.1f} |", flush=True)


if __name__ == "__main__":
    main()
