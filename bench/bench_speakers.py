"""Speaker turns: what the speakers step costs per minute of talk, the threshold's plateau on the
test voices, and the clustering's memory on a four-hour count of regions.

    .venv/bin/python bench/bench_speakers.py [--minutes 10] [--keep DIR]

1. Cost: a conversation of espeak-ng voices (two, taking turns sentence by sentence, 0.7 s apart)
   through the speakers step alone, in this process: audio decode, Silero VAD, the speaker encoder
   on every region, clustering. Its transcript is the known text (one "word" per sentence, the
   sentence's audible span): the step only reads where words were heard, and Whisper's own cost is
   bench_whisper's. The encoder's load is timed apart. Wall and CPU seconds, x real time.
2. The threshold sweep: on one, two and three distinct voices and on two voices built on the same
   male voice, the speakers found and the confusion (the share of talk time given to the wrong
   speaker, under the best one-to-one matching) for each cosine-distance threshold.
3. Clustering 20,000 prints (about four hours of turns) in blocks: time and peak memory, against
   the distance matrix that clustering them at once would hold.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import resource
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from reelscope import synth
from reelscope.analysis import pipeline, speakers, transcribe
from reelscope.artifacts import read_json, write_json
from reelscope.settings import Settings

SENTENCES = ["The harbour patrol reported a small boat near the pier.", "I saw it too, it had no lights on at all.",
             "Please send the second unit to the north gate right away.", "Understood, the second unit is on its way now.",
             "Keep the channel open and report every ten minutes.", "Copy that, we will report at half past nine.",
             "The weather is turning and the wind is rising fast.", "We should bring the boats in before it gets dark."]
MAN, WOMAN, THIRD, SECOND_MAN = "en-us", "en-us+f3", "en-us+Lee", "en-us+m7"
VOICE_SETS = {"one voice": [MAN], "two voices": [MAN, WOMAN], "three voices": [MAN, WOMAN, THIRD],
              "two male voices alike": [MAN, SECOND_MAN]}
THRESHOLDS = (0.10, 0.15, 0.20, 0.25, 0.30, 0.35, 0.40, 0.45)


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def conversation(folder: Path, name: str, voices: list[str], sentences: list[str]):
    """(video, spoken sentences, the voice of each) for the sentences read in turn by the voices."""
    wav = folder / f"{name}.wav"
    each = [voices[i % len(voices)] for i in range(len(sentences))]
    spoken = synth.speech_track(sentences, wav, gap_s=0.7, voice=each)
    video = synth.slideshow(folder / f"{name}.mp4", [("color:black", round(spoken[-1].end + 1.5, 1))], (160, 120), 5,
                            audio=wav)
    return video, spoken, each


def known_transcript(spoken) -> dict:
    return {"segments": [{"start": s.start, "end": s.end, "words": [{"word": s.text, "start": s.start, "end": s.end}]}
                         for s in spoken]}


def confusion(turns: list[dict], spoken, voices: list[str]) -> float:
    """The share of talk time given to the wrong speaker, under the best one-to-one matching."""
    found = sorted({t["speaker"] for t in turns})
    truth = sorted(set(voices))
    overlap = {(f, v): 0.0 for f in found for v in truth}
    for turn in turns:
        for sentence, voice in zip(spoken, voices):
            shared = min(turn["end"], sentence.end) - max(turn["start"], sentence.start)
            if shared > 0:
                overlap[turn["speaker"], voice] += shared
    total = sum(overlap.values()) or 1.0
    if len(found) <= len(truth):
        matchings = [list(zip(found, chosen)) for chosen in itertools.permutations(truth, len(found))]
    else:
        matchings = [list(zip(chosen, truth)) for chosen in itertools.permutations(found, len(truth))]
    return 1 - max(sum(overlap[pair] for pair in matching) for matching in matchings) / total


def cost(folder: Path, minutes: float) -> None:
    sentences = SENTENCES * int(np.ceil(minutes * 60 / (len(SENTENCES) * 4.3)))
    video, spoken, _ = conversation(folder, f"talk-{minutes:g}min", [MAN, WOMAN], sentences)
    settings = Settings(model_dir=str(folder / "models"))
    out = folder / "cost"
    pipeline.probe(video, out, settings)
    write_json(out / "transcript.json", known_transcript(spoken))
    started, cpu = time.perf_counter(), cpu_s()
    with speakers.encoder():
        pass
    load_wall, load_cpu = time.perf_counter() - started, cpu_s() - cpu
    started, cpu = time.perf_counter(), cpu_s()
    pipeline.find_speakers(video, out, settings)
    wall, used = time.perf_counter() - started, cpu_s() - cpu
    length = spoken[-1].end + 1.5
    found = read_json(out / "speakers.json")
    print(f"\n{length / 60:.1f} minutes of two voices taking turns ({len(spoken)} sentences), 2 cores:\n")
    print("| part | wall s | CPU s | x real time (wall) |")
    print("|---|---:|---:|---:|")
    print(f"| encoder load (once per process) | {load_wall:.2f} | {load_cpu:.2f} | |")
    print(f"| speakers step | {wall:.1f} | {used:.1f} | {wall / length:.4f} |")
    print(f"\nfound {len(found['speakers'])} speakers, {len(found['turns'])} turns "
          f"(truth: 2 speakers, {len(spoken)} turns)")


def sweep(folder: Path) -> None:
    print("\n| voices | " + " | ".join(f"{t:.2f}" for t in THRESHOLDS) + " |")
    print("|---|" + "---:|" * len(THRESHOLDS))
    settings = Settings(model_dir=str(folder / "models"))
    for name, voices in VOICE_SETS.items():
        video, spoken, each = conversation(folder, name.replace(" ", "-"), voices, SENTENCES[:6])
        words = [w for s in known_transcript(spoken)["segments"] for w in s["words"]]
        regions = list(speakers.region_prints(transcribe.audio_windows(video, 600.0), words, settings))
        cells = []
        for threshold in THRESHOLDS:
            turns = speakers.speaker_turns(regions, dataclasses.replace(settings, speaker_threshold=threshold))
            cells.append(f"{len({t['speaker'] for t in turns})} / {confusion(turns, spoken, each):.2f}")
        print(f"| {name} ({len(set(voices))}) | " + " | ".join(cells) + " |")
    print("\ncells: speakers found / confusion")


def memory() -> None:
    rng = np.random.default_rng(7)
    centres = rng.normal(size=(3, 256))
    prints = centres[rng.integers(0, 3, 20_000)] + rng.normal(scale=0.35, size=(20_000, 256))
    prints = (prints / np.linalg.norm(prints, axis=1, keepdims=True)).astype(np.float32)
    tracemalloc.start()
    started = time.perf_counter()
    labels = speakers.cluster(prints, np.ones(len(prints)), threshold=0.5)
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    whole = len(prints) * (len(prints) - 1) // 2 * 8
    print(f"\n20,000 prints in blocks of {speakers.CLUSTER_BLOCK}: {elapsed:.1f} s, peak {peak / 2**20:.0f} MiB traced "
          f"({len(set(labels))} clusters); at once the distances alone would be {whole / 2**30:.1f} GiB")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--keep", type=Path)
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="reelscope-speakers-"))
    folder.mkdir(parents=True, exist_ok=True)
    cost(folder, args.minutes)
    sweep(folder)
    memory()


if __name__ == "__main__":
    main()
