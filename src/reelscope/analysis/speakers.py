"""Who speaks when: speaker turns found from the voices themselves (diarization), offline on the CPU.

1. Voiced regions: Silero VAD (shipped inside faster-whisper) over the audio, read a window at
   a time; a region is kept only when the transcript heard a word in it (music and noise that the
   VAD takes for a voice carry no words).
2. One voice print per region: Resemblyzer's speaker encoder (a 3-layer LSTM; its weights ship
   in its wheel) over 1.6 s windows, 0.8 s apart, averaged. Its mel front end is written here in
   numpy, as librosa computes it, so neither librosa nor webrtcvad (Resemblyzer's declared
   dependencies, used only for that and for its own VAD) is installed.
3. Speakers: average-linkage clustering of the prints on cosine distance, stopped at a threshold
   (the number of speakers is not known), each region weighted by its length. Done in blocks of
   CLUSTER_BLOCK regions and then over the blocks' clusters, so memory stays bounded whatever the
   length (an hour of talk is about a thousand regions).
4. Turns: a speaker's consecutive regions, joined across pauses.
Regions too short for a print (under speaker_min_region_s) take the speaker whose print is
nearest. A change of speaker with no pause between is not found (the region is one voice print).
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from reelscope import models
from reelscope.artifacts import sha256_file
from reelscope.errors import ModelUnavailable, ReelscopeError
from reelscope.packaged import package_file
from reelscope.settings import Settings

if TYPE_CHECKING:  # annotations only
    import numpy as np

SAMPLE_RATE = 16000
N_FFT, HOP, N_MELS = 400, 160, 40  # Resemblyzer's 25 ms windows, 10 ms apart, 40 mel bands
PARTIAL_FRAMES, PARTIAL_STEP = 160, 80  # 1.6 s windows, 0.8 s apart
TARGET_DBFS = -30.0  # quiet speech is raised to this level before its print (Resemblyzer's preprocessing)
ENCODER_BATCH = 64  # windows through the network at once
CLUSTER_BLOCK = 1500  # regions clustered at once: a 1500² distance matrix is 18 MB


@functools.cache
def mel_filters() -> np.ndarray:
    """librosa.filters.mel(sr=16000, n_fft=400, n_mels=40): Slaney's mel scale and area normalisation."""
    import numpy as np

    def hz_to_mel(f):
        f = np.asarray(f, dtype=np.float64)
        linear = f / (200.0 / 3)
        return np.where(f >= 1000, 15.0 + np.log(np.maximum(f, 1e-10) / 1000) / (np.log(6.4) / 27), linear)

    def mel_to_hz(m):
        m = np.asarray(m, dtype=np.float64)
        return np.where(m >= 15.0, 1000 * np.exp((np.log(6.4) / 27) * (m - 15.0)), m * 200.0 / 3)

    fft_freqs = np.linspace(0, SAMPLE_RATE / 2, 1 + N_FFT // 2)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(SAMPLE_RATE / 2), N_MELS + 2))
    fdiff, ramps = np.diff(mel_f), mel_f[:, None] - fft_freqs[None, :]
    lower, upper = -ramps[:-2] / fdiff[:-1, None], ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    return (weights * (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]).astype(np.float32)


def mel_spectrogram(wav: np.ndarray) -> np.ndarray:
    """(frames, 40) power mel spectrogram, as librosa.feature.melspectrogram computes it (centred
    frames, zero padding, periodic Hann window); not a log spectrogram: the encoder was trained so."""
    import numpy as np

    padded = np.pad(wav.astype(np.float32), N_FFT // 2)
    frames = 1 + (len(padded) - N_FFT) // HOP
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)
    strided = np.lib.stride_tricks.as_strided(padded, (frames, N_FFT), (padded.strides[0] * HOP, padded.strides[0]))
    power = np.abs(np.fft.rfft(strided * window, axis=1)) ** 2
    return (power.astype(np.float32) @ mel_filters().T).astype(np.float32)


def encoder_weights() -> Path:
    try:
        return package_file("resemblyzer", "pretrained.pt")
    except ReelscopeError as err:
        raise ModelUnavailable(f"the speaker encoder is not installed ({err}): scripts/setup.sh installs "
                               "Resemblyzer 0.1.4 without its dependencies") from None


@functools.cache
def encoder_sha256() -> str:
    return sha256_file(encoder_weights())


def _load_encoder():
    import torch

    weights = encoder_weights()

    class VoiceEncoder(torch.nn.Module):  # Resemblyzer's network, its weights loaded into it as they ship
        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(N_MELS, 256, 3, batch_first=True)
            self.linear = torch.nn.Linear(256, 256)

        def forward(self, mels):
            _, (hidden, _) = self.lstm(mels)
            raw = torch.relu(self.linear(hidden[-1]))
            return raw / torch.norm(raw, dim=1, keepdim=True).clamp_min(1e-8)

    encoder = VoiceEncoder()
    state = torch.load(weights, map_location="cpu")["model_state"]
    encoder.load_state_dict({k: v for k, v in state.items() if k.split(".")[0] in ("lstm", "linear")})
    return encoder.eval()


def encoder():
    """The process's speaker encoder, held by the caller alone (models.exclusive)."""
    return models.exclusive("speaker-encoder", _load_encoder)


def _windows(wav: np.ndarray) -> np.ndarray:
    """(n, 160, 40): the mel frames of a region's 1.6 s windows, 0.8 s apart (the region padded to
    one window when shorter), quiet speech raised to TARGET_DBFS first."""
    import numpy as np

    rms = float(np.sqrt(np.mean(wav.astype(np.float64) ** 2))) if len(wav) else 0.0
    if rms > 0:
        wav = wav * max(1.0, 10 ** (TARGET_DBFS / 20) / rms)
    mel = mel_spectrogram(np.pad(wav, (0, max(0, PARTIAL_FRAMES * HOP - len(wav)))))
    starts = range(0, max(1, len(mel) - PARTIAL_FRAMES + PARTIAL_STEP // 2), PARTIAL_STEP)
    return np.stack([np.pad(mel[s:s + PARTIAL_FRAMES], ((0, max(0, s + PARTIAL_FRAMES - len(mel))), (0, 0)))
                     for s in starts])


def voice_prints(model, clips: list[np.ndarray]) -> list[np.ndarray]:
    """Each region's unit-length print: the mean of its windows' prints. The windows of all the
    regions go through the network ENCODER_BATCH at a time: a region's three or four alone kept 2
    cores waiting on each other (measured: 78 ms a region against 11 ms on one thread)."""
    import numpy as np
    import torch

    windows = [_windows(clip) for clip in clips]
    if not windows:
        return []
    stacked = np.concatenate(windows)
    with torch.inference_mode():
        found = np.concatenate([model(torch.from_numpy(stacked[i:i + ENCODER_BATCH])).numpy()
                                for i in range(0, len(stacked), ENCODER_BATCH)])
    prints, first = [], 0
    for count in map(len, windows):
        mean = found[first:first + count].mean(axis=0)
        prints.append((mean / max(float(np.linalg.norm(mean)), 1e-8)).astype(np.float32))
        first += count
    return prints


def voiced_regions(audio: np.ndarray, offset_s: float) -> list[tuple[float, float]]:
    """(start, end) seconds of speech in `audio` (16 kHz, starting at offset_s) by Silero VAD."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    found = get_speech_timestamps(audio, VadOptions(min_silence_duration_ms=250, speech_pad_ms=30,
                                                    min_speech_duration_ms=100))
    return [(round(offset_s + r["start"] / SAMPLE_RATE, 3), round(offset_s + r["end"] / SAMPLE_RATE, 3)) for r in found]


def heard(regions: list[tuple[float, float]], words: list[dict]) -> list[tuple[float, float]]:
    """The regions that hold the middle of at least one transcribed word (both in time order)."""
    kept, i = [], 0
    middles = [(w["start"] + w["end"]) / 2 for w in words]
    for start, end in regions:
        while i < len(middles) and middles[i] < start:
            i += 1
        if i < len(middles) and middles[i] <= end:
            kept.append((start, end))
    return kept


def region_prints(audio_windows: Iterable[tuple[float, np.ndarray]], words: list[dict],
                  settings: Settings) -> Iterator[tuple[float, float, np.ndarray | None]]:
    """(start, end, print or None when too short) of each heard region, a window of audio at a time."""
    with encoder() as model:
        for offset, audio in audio_windows:
            regions = heard(voiced_regions(audio, offset), words)
            long_enough = [(start, end) for start, end in regions if end - start >= settings.speaker_min_region_s]
            prints = dict(zip(long_enough, voice_prints(model, [
                audio[int((start - offset) * SAMPLE_RATE):int((end - offset) * SAMPLE_RATE)] for start, end in long_enough])))
            for start, end in regions:
                yield start, end, prints.get((start, end))


def _average_linkage(prints: np.ndarray, threshold: float) -> np.ndarray:
    """Cluster labels 0.. by average linkage on cosine distance, merging while under `threshold`."""
    import numpy as np
    from scipy.cluster.hierarchy import fcluster, linkage

    if len(prints) == 1:
        return np.zeros(1, int)
    return _renumber(fcluster(linkage(prints.astype(np.float64), method="average", metric="cosine"), t=threshold,
                              criterion="distance"))


def _renumber(labels) -> np.ndarray:
    import numpy as np

    first: dict[int, int] = {}
    for label in labels:
        first.setdefault(int(label), len(first))
    return np.array([first[int(label)] for label in labels], int)


def _centroids(prints: np.ndarray, weights: np.ndarray, labels: np.ndarray) -> np.ndarray:
    import numpy as np

    sums = np.zeros((labels.max() + 1, prints.shape[1]))
    np.add.at(sums, labels, prints * weights[:, None])
    return sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)


def cluster(prints: np.ndarray, weights: np.ndarray, threshold: float, block: int = CLUSTER_BLOCK) -> np.ndarray:
    """Speaker labels 0.. in order of first appearance. Up to `block` prints are clustered at once;
    more are clustered a block at a time, the blocks' clusters (as centroids weighted by talk
    time) clustered in turn, and each print takes the nearest final centroid. Memory: a block²
    distance matrix, never prints²."""
    import numpy as np

    if len(prints) <= block:
        return _average_linkage(prints, threshold) if len(prints) else np.zeros(0, int)
    centroids, centroid_weights = [], []
    for first in range(0, len(prints), block):
        part, part_weights = prints[first:first + block], weights[first:first + block]
        labels = _average_linkage(part, threshold)
        centroids.append(_centroids(part, part_weights, labels))
        centroid_weights.append(np.bincount(labels, weights=part_weights))
    centroids, centroid_weights = np.concatenate(centroids), np.concatenate(centroid_weights)
    if len(centroids) == len(prints):  # nothing merged within any block: every print its own speaker
        return np.arange(len(prints))
    final = _centroids(centroids, centroid_weights, cluster(centroids, centroid_weights, threshold, block))
    return _renumber(np.argmax(prints @ final.T, axis=1))


def speaker_turns(regions: list[tuple[float, float, np.ndarray | None]], settings: Settings) -> list[dict]:
    """[{speaker, start, end, voiced_s}] from the regions' prints: clustered, ids S1.. in order of first
    appearance, a speaker's consecutive regions joined across pauses up to speaker_turn_gap_s."""
    import numpy as np

    printed = [i for i, (_, _, p) in enumerate(regions) if p is not None]
    if not printed:  # nothing long enough to tell a voice by: no speakers
        return []
    prints = np.stack([regions[i][2] for i in printed])
    weights = np.array([regions[i][1] - regions[i][0] for i in printed])
    labels = cluster(prints, weights, settings.speaker_threshold)
    label_of = dict(zip(printed, labels))
    printed_starts = [regions[i][0] for i in printed]  # in time order, as the regions are
    turns: list[dict] = []
    for i, (start, end, _) in enumerate(regions):
        if i in label_of:
            label = int(label_of[i])
        else:  # too short for a print of its own: the speaker of the printed region starting nearest
            after = bisect.bisect_left(printed_starts, start)
            nearest = min((j for j in (after - 1, after) if 0 <= j < len(printed)),
                          key=lambda j: abs(printed_starts[j] - start))
            label = int(labels[nearest])
        speaker = f"S{label + 1}"
        if turns and turns[-1]["speaker"] == speaker and start - turns[-1]["end"] <= settings.speaker_turn_gap_s:
            turns[-1]["end"] = end
            turns[-1]["voiced_s"] = round(turns[-1]["voiced_s"] + end - start, 3)
        else:
            turns.append({"speaker": speaker, "start": start, "end": end, "voiced_s": round(end - start, 3)})
    return _first_appearance(turns)


def _first_appearance(turns: list[dict]) -> list[dict]:
    """Speaker ids renumbered S1, S2... in the order they first speak (a short region may come first)."""
    order: dict[str, str] = {}
    for turn in turns:
        order.setdefault(turn["speaker"], f"S{len(order) + 1}")
    return [{**turn, "speaker": order[turn["speaker"]]} for turn in turns]


def summary(turns: list[dict]) -> list[dict]:
    """[{id, talk_time_s, turns, first_s}] per speaker, in id order; talk time is voiced time (pauses
    inside a turn are not talk)."""
    found: dict[str, dict] = {}
    for turn in turns:
        entry = found.setdefault(turn["speaker"], {"id": turn["speaker"], "talk_time_s": 0.0, "turns": 0,
                                                   "first_s": turn["start"]})
        entry["talk_time_s"] = round(entry["talk_time_s"] + turn["voiced_s"], 3)
        entry["turns"] += 1
    return sorted(found.values(), key=lambda s: int(s["id"][1:]))


def diarize(audio_windows: Iterable[tuple[float, np.ndarray]], transcript: dict, settings: Settings) -> dict:
    """speakers.json content: the rules, each speaker's talk time, and the turns."""
    words = [w for seg in transcript.get("segments", []) for w in seg.get("words", [])]
    rules = {"threshold": settings.speaker_threshold, "min_region_s": settings.speaker_min_region_s,
             "turn_gap_s": settings.speaker_turn_gap_s,
             "encoder": {"weights": "resemblyzer/pretrained.pt", "sha256": encoder_sha256()}}
    if not words:
        return {"rules": rules, "speakers": [], "turns": [],
                "skipped_reason": transcript.get("skipped_reason") or "no words were heard"}
    turns = speaker_turns(list(region_prints(audio_windows, words, settings)), settings)
    return {"rules": rules, "speakers": summary(turns), "turns": turns,
            **({} if turns else {"skipped_reason": "no voiced stretch long enough to tell a voice by"})}


def _speaker_at(turns: list[dict], starts: list[float], t: float) -> str:
    """The speaker of the turn holding time t, or of the nearest turn."""
    i = bisect.bisect_right(starts, t) - 1
    candidates = [turns[j] for j in (i, i + 1) if 0 <= j < len(turns)]
    return min(candidates, key=lambda turn: 0 if turn["start"] <= t <= turn["end"]
               else min(abs(t - turn["start"]), abs(t - turn["end"])))["speaker"]


def attribute(segments: list[dict], turns: list[dict]) -> list[dict]:
    """The transcript's segments with a `speaker` each (and on each word), a segment that spans a
    change of speaker split where the words change; ids renumbered in order. Without turns the
    segments are returned as they are."""
    if not turns:
        return segments
    starts = [turn["start"] for turn in turns]
    pieces: list[dict] = []
    for segment in segments:
        words = [{**w, "speaker": _speaker_at(turns, starts, (w["start"] + w["end"]) / 2)} for w in segment.get("words", [])]
        if not words:
            pieces.append({**segment, "speaker": _speaker_at(turns, starts, (segment["start"] + segment["end"]) / 2)})
            continue
        runs: list[list[dict]] = []
        for word in words:
            if runs and runs[-1][-1]["speaker"] == word["speaker"]:
                runs[-1].append(word)
            else:
                runs.append([word])
        for run in runs:
            text = segment["text"] if len(runs) == 1 else " ".join(w["word"] for w in run)
            pieces.append({**segment, "start": run[0]["start"] if len(runs) > 1 else segment["start"],
                           "end": run[-1]["end"] if len(runs) > 1 else segment["end"],
                           "text": text, "words": run, "speaker": run[0]["speaker"]})
    return [{**piece, "id": i} for i, piece in enumerate(pieces)]
