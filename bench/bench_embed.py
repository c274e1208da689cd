"""Benchmark the embedder and the semantic floors (the engine's queries: bench_search.py).

    .venv/bin/python bench/bench_embed.py

Rows, all measured in this run:
  embed (sentence-transformers)  the baseline: the same model and weights in torch
  embed (numpy, embed.py)        what the Index step and the API run, all cores, then one thread
                                 (a Lambda function with 1769 MB has one vCPU)

Then the similarity floors (search.MIN_SIMILARITY), per document kind: how many related queries
reach their document and how many unrelated ones reach any, with the lowest related and the
highest unrelated similarity. Entities: the 80 COCO labels as the Index step writes them ("dog
animal"), related queries naming or paraphrasing one, unrelated single words. Transcripts: the
sentences above and paraphrases sharing no word with them, unrelated sentences.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from reelscope.search import embed
from reelscope.search import index as search

SENTENCES = [
    "Good morning and welcome to the harbor report.",
    "Three cargo ships arrived before sunrise and two more are waiting outside the port.",
    "The crane on the north pier was repaired yesterday afternoon.",
    "Workers expect strong wind this evening, so small boats should stay inside.",
    "The next report will follow at noon with the updated schedule.",
]


def timed(function, repeat: int = 1) -> float:
    """Median seconds of `repeat` calls."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def segments(count: int) -> list[str]:
    return [f"{SENTENCES[i % len(SENTENCES)]} (segment {i})" for i in range(count)]


def embedding_rows(count: int) -> list[tuple[str, float]]:
    from sentence_transformers import SentenceTransformer
    from threadpoolctl import threadpool_limits

    texts = segments(count)
    reference = SentenceTransformer(str(embed.model_dir()), device="cpu")
    reference.encode(texts[:8])
    embed.embed(texts[:8])  # both warm: weights loaded
    rows = [("embed (sentence-transformers, all cores)", timed(lambda: reference.encode(texts, batch_size=embed.BATCH))),
            ("embed (numpy, all cores)", timed(lambda: embed.embed(texts)))]
    with threadpool_limits(1):
        rows.append(("embed (numpy, one thread)", timed(lambda: embed.embed(texts))))
    return rows


ANIMALS = {"bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe"}
RELATED = {"entity": {"a dog": "dog", "puppy": "dog", "canine": "dog", "a car": "car", "automobile": "car", "vehicle": "car",
                      "a cat": "cat", "kitten": "cat", "a bird": "bird", "a ship": "boat", "people": "person",
                      "pedestrians": "person", "a man": "person", "a bus": "bus", "public transport": "bus",
                      "striped horse": "zebra", "a laptop computer": "laptop", "mobile phone": "cell phone"},
           "transcript": {"vessels carrying freight reached port at dawn": 1, "the lifting machine at the dock was fixed": 2,
                          "gusts tonight mean dinghies must remain in the marina": 3, "welcome to the port news": 0,
                          "another bulletin comes at midday": 4}}
UNRELATED = {"entity": ("justice theory river mountain idea pencil salary forest kingdom silence engine harvest poetry brick "
                        "friendship ocean thunder ladder velvet honest quickly purple garden museum doctor winter volcano "
                        "island piano language memory history courage nation science village blanket wisdom shadow comet "
                        "lemon sugar copper marble anchor fabric tunnel rumor voyage planet meadow circus glacier orchid "
                        "theater senate lawyer crystal galaxy jungle dance whisper candle budget contract invoice policy "
                        "strategy election protest climate vaccine virus software network database algorithm").split(),
             "transcript": ["we discussed the budget for next year", "the election results were announced",
                            "she plays the piano every evening", "a new vaccine was approved", "the museum opens at nine",
                            "lattice quantum chromodynamics", "my favourite recipe needs three eggs",
                            "the software update failed overnight"]}


def floor_rows() -> list[tuple]:
    """(kind, floor, related reaching their document, unrelated reaching any, lowest related, highest unrelated)."""
    import yaml
    from ultralytics import cfg

    coco = yaml.safe_load((Path(cfg.__file__).parent / "datasets" / "coco.yaml").read_text())["names"].values()
    documents = {"entity": {name: f"{name} animal" if name in ANIMALS else name for name in coco},
                 "transcript": dict(enumerate(SENTENCES))}
    rows = []
    for kind, texts in documents.items():
        keys = list(texts)
        matrix = embed.embed([texts[k] for k in keys])
        floor = search.MIN_SIMILARITY[kind]
        related = [float(row[keys.index(target)]) for row, target in
                   zip(embed.embed(list(RELATED[kind])) @ matrix.T, RELATED[kind].values())]
        unrelated = (embed.embed(UNRELATED[kind]) @ matrix.T).max(axis=1)
        rows.append((kind, floor, f"{sum(r >= floor for r in related)}/{len(related)}",
                     f"{int((unrelated >= floor).sum())}/{len(unrelated)}", min(related), float(unrelated.max())))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--segments", type=int, default=512, help="segments embedded in the throughput rows")
    args = parser.parse_args()
    print(f"Machine: {os.cpu_count()} cores ({platform.processor() or platform.machine()}), "
          f"Python {platform.python_version()}, numpy {np.__version__}, no GPU used.\n")
    embedding = embedding_rows(args.segments)
    baseline = embedding[0][1]
    print(f"| embedding {args.segments} segments | seconds | segments/s | x sentence-transformers |")
    print("|---|---:|---:|---:|")
    for name, seconds in embedding:
        print(f"| {name} | {seconds:.2f} | {args.segments / seconds:.0f} | {baseline / seconds:.2f} |")
    print("\n| kind | floor | related reaching their document | unrelated reaching any | lowest related | highest unrelated |")
    print("|---|---:|---:|---:|---:|---:|")
    for kind, floor, related, unrelated, lowest, highest in floor_rows():
        print(f"| {kind} | {floor} | {related} | {unrelated} | {lowest:.3f} | {highest:.3f} |")


if __name__ == "__main__":
    main()
