"""The stages as plain functions, files in and files out, and `analyze`, which runs them all.

Each stage writes its artifacts through `artifacts.staging`, so they appear complete or not at
all, and returns the relative paths it published. Later deployment units (Lambda handlers,
Batch entrypoints, local mode) call these same functions.
"""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from reelscope import __version__
from reelscope.analysis import detect as detect_mod
from reelscope.analysis import entities as entities_mod
from reelscope.analysis import frames, media, ocr, report_pdf, reports, shots, speakers, subtitles
from reelscope.analysis import tracks as tracks_mod
from reelscope.analysis import transcribe as transcribe_mod
from reelscope.analysis import translate as translate_mod
from reelscope.artifacts import building, describe_artifact, read_json, sha256_file, staging, write_json
from reelscope.errors import StepSkipped, error_message
from reelscope.progress import Progress
from reelscope.settings import Settings
from reelscope.status import Status

MANIFEST_SCHEMA = "reelscope.manifest/1"
# After probe, four independent branches, each run in this order; a step runs when the steps it
# needs succeeded, and is skipped otherwise (its siblings still run). On-screen text is a branch of
# its own: it needs nothing of detection, and beside it rather than after it the longest branch
# is shorter (a decode of its own costs less than waiting: docs/BENCHMARKS.md).
BRANCHES = {"renditions": ("downscale",), "speech": ("transcribe", "speakers", "translate", "subtitles"),
            "vision": ("detect", "shots", "tracks", "entities"), "text": ("ocr",)}
STEP_NEEDS = {"speakers": ("transcribe",), "translate": ("transcribe",), "subtitles": ("transcribe",),
              "shots": ("detect",), "tracks": ("detect",), "entities": ("detect",)}
STEP_ORDER = ("probe", *(name for branch in BRANCHES.values() for name in branch))
# The files each step reads, declared once: a task downloads exactly these before it runs the step
# (in AWS each task is a machine of its own), those of a step that delivered nothing in this run
# excepted, and the step goes without them (entities without shots.json: no range ends at a cut).
# `analyze` holds every file in one folder; the parity test runs each task alone, so a file read
# and not declared here shows there.
STEP_READS = {
    "probe": (), "downscale": ("media.json",), "transcribe": ("media.json",),
    "speakers": ("media.json", "transcript.raw.json"),
    "translate": ("media.json", "transcript.raw.json", "speakers.json"),
    "subtitles": ("transcript.raw.json", "speakers.json"),
    "detect": ("media.json",), "shots": ("media.json", "frame-signal.json"), "tracks": ("detections.json",),
    "entities": ("detections.json", "shots.json", "tracks.json"), "ocr": ("media.json",),
}
WRITTEN_BY = {"media.json": "probe", "transcript.raw.json": "transcribe", "speakers.json": "speakers",
              "detections.json": "detect", "frame-signal.json": "detect", "shots.json": "shots", "tracks.json": "tracks"}
# The steps whose outputs a step reads when they succeeded (probe, which always runs, aside).
FEEDS = {name: tuple(sorted({WRITTEN_BY[f] for f in reads} - {"probe"})) for name, reads in STEP_READS.items()}
# The settings each step's result depends on: field names, or prefixes ending in "_". Every
# setting but settings.PLACE_AND_PACE belongs to a step (a test checks it).
STEP_SETTINGS = {
    "probe": ("max_duration_s", "max_bytes"),
    "downscale": ("ladder", "thumbnail_", "x264_", "copy_max_bit_rate"),
    "transcribe": ("whisper_",),
    "speakers": ("speaker_",),
    "translate": ("translate_", "whisper_", "subtitle_"),
    "subtitles": ("subtitle_",),
    "detect": ("yolo_weights", "detect_", "animal_labels"),
    "shots": ("shot_", "detect_fps"),
    "tracks": ("track_",),
    "entities": ("entity_",),
    "ocr": ("ocr_", "clock_", "entity_gap_s"),
}
# The vision branch decodes the video once: detect keeps its sampled frames here (JPEG, the long
# side up to what evidence shows) for the steps after it. Scratch in the branch's working folder,
# never published: discarded when the branch ends (in `analyze` too, so that no other branch reads
# what it would not have in the state machine).
KEPT_FRAMES = ".sampled-frames"


@functools.cache
def code_digest() -> str:
    """The package's own code: a step made by other code is not reused."""
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256(__version__.encode())
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def step_settings(name: str, settings: Settings) -> dict:
    """The settings that can change what step `name` finds (STEP_SETTINGS)."""
    claimed = STEP_SETTINGS[name]
    return {k: v for k, v in settings.results_affecting().items()
            if any(k == c or (c.endswith("_") and k.startswith(c)) for c in claimed)}


def step_fingerprint(name: str, settings: Settings, fed_by: tuple[str, ...] | None = None) -> str:
    """What a step's result depends on besides the upload (a job is one upload): the code, its
    settings, and the fingerprints of the steps whose outputs it read (`fed_by`, by default all of
    FEEDS). A record that says SUCCEEDED with the same fingerprint means it need not run again."""
    feeds = FEEDS.get(name, ()) if fed_by is None else fed_by
    basis = json.dumps([name, code_digest(), step_settings(name, settings),
                        {feed: step_fingerprint(feed, settings) for feed in sorted(feeds)}], sort_keys=True, default=str)
    return hashlib.sha256(basis.encode()).hexdigest()[:32]


def blocked_by(name: str, steps: dict[str, dict]) -> str | None:
    """The step that `name` needs and that did not succeed, if any (a need not in `steps` ran
    elsewhere: the state machine only starts a branch after probe, and runs a branch in order)."""
    return next((need for need in STEP_NEEDS.get(name, ())
                 if steps.get(need, {"status": Status.SUCCEEDED})["status"] != Status.SUCCEEDED), None)


def _publish_json(out_dir: Path, name: str, content) -> list[str]:
    with staging(out_dir) as stage:
        write_json(stage.dir / name, content)
    return stage.published


def _facts(out_dir: Path) -> dict:
    return read_json(Path(out_dir) / "media.json")


def probe(video: Path, out_dir: Path, settings: Settings) -> list[str]:
    return _publish_json(out_dir, "media.json", media.probe(video, settings))


def downscale(video: Path, out_dir: Path, settings: Settings) -> list[str]:
    facts = _facts(out_dir)
    with staging(out_dir) as stage:
        write_json(stage.dir / "renditions.json", media.encode_renditions(video, facts, settings, stage.dir))
    return stage.published


def transcribe(video: Path, out_dir: Path, settings: Settings) -> list[str]:
    """transcript.raw.json: what Whisper heard, before anyone is named (the subtitles step makes the
    job's transcript.json from it: one file, one writer)."""
    return _publish_json(out_dir, "transcript.raw.json", transcribe_mod.transcribe(video, _facts(out_dir), settings))


def find_speakers(video: Path, out_dir: Path, settings: Settings) -> list[str]:
    """speakers.json: who speaks when, from the voices heard where the transcript has words."""
    transcript = read_json(Path(out_dir) / "transcript.raw.json")  # no audio: no words, and no audio is decoded
    tracks = media.audio_tracks(_facts(out_dir))
    found = speakers.diarize(transcribe_mod.audio_windows(video, settings.whisper_window_s, tracks), transcript, settings)
    return _publish_json(out_dir, "speakers.json", found)


def attributed(transcript: dict, out_dir: Path) -> dict:
    """The transcript with each segment's speaker, when speakers.json is in out_dir (speakers.attribute)."""
    turns_json = Path(out_dir) / "speakers.json"
    turns = read_json(turns_json)["turns"] if turns_json.is_file() else []
    return {**transcript, "segments": speakers.attribute(transcript.get("segments", []), turns)}


def _write_transcript(folder: Path, transcript: dict, out_dir: Path, settings: Settings, suffix: str = "") -> None:
    """transcript{suffix}.json with each segment's and word's speaker (when speakers.json is in
    out_dir), and its subtitles{suffix}.srt and .vtt."""
    named = attributed(transcript, out_dir)
    write_json(folder / f"transcript{suffix}.json", named)
    cues = subtitles.build_cues(named, settings)
    (folder / f"subtitles{suffix}.srt").write_text(subtitles.to_srt(cues), encoding="utf-8")
    (folder / f"subtitles{suffix}.vtt").write_text(subtitles.to_vtt(cues), encoding="utf-8")


def make_subtitles(transcript_json: Path, out_dir: Path, settings: Settings) -> list[str]:
    """The job's transcript.json and subtitles.srt and .vtt from a transcript; with speakers.json
    in out_dir, every segment and word carries its speaker and the cues name them."""
    with staging(out_dir) as stage:
        _write_transcript(stage.dir, read_json(transcript_json), out_dir, settings)
    return stage.published


def translate(video: Path, out_dir: Path, settings: Settings) -> list[str]:
    """transcript.en.json and subtitles.en.srt/.vtt for the speech not in English (translate.py), or
    StepSkipped saying why not."""
    found = translate_mod.translate(video, read_json(Path(out_dir) / "transcript.raw.json"), settings,
                                    media.audio_tracks(_facts(out_dir)))
    with staging(out_dir) as stage:
        _write_transcript(stage.dir, found, out_dir, settings, ".en")
    return stage.published


def kept_frames(out_dir: Path) -> frames.KeptFrames | None:
    return frames.KeptFrames.find(Path(out_dir) / KEPT_FRAMES)


def discard_kept_frames(out_dir: Path) -> None:
    shutil.rmtree(Path(out_dir) / KEPT_FRAMES, ignore_errors=True)


def detect(video: Path, out_dir: Path, settings: Settings) -> list[str]:
    """detections.json; from the same decode, frame-signal.json for shots and the KEPT_FRAMES."""
    facts = _facts(out_dir)
    discard_kept_frames(out_dir)
    keep_side = entities_mod.EVIDENCE_MAX_SIDE
    with (staging(out_dir) as stage, tempfile.TemporaryDirectory(prefix="signal-") as tmp,
          building(Path(out_dir) / KEPT_FRAMES) as kept):
        raw = Path(tmp) / "frames.gray"
        write_json(stage.dir / "detections.json", detect_mod.detect(video, facts, settings, raw, (kept, keep_side)))
        write_json(stage.dir / "frame-signal.json", shots.frame_signal(raw, facts["video"]["fps"]))
    return stage.published


def find_shots(video: Path, out_dir: Path, settings: Settings) -> list[str]:
    """shots.json and a keyframe per shot, from detect's frame-signal.json (decoded here when absent)."""
    facts = _facts(out_dir)
    signal_json = Path(out_dir) / "frame-signal.json"
    if signal_json.is_file():
        signal = read_json(signal_json)
    else:
        with tempfile.TemporaryDirectory(prefix="signal-") as tmp:
            raw = frames.decode_signal(video, facts, Path(tmp) / "frames.gray", media.decode_threads(settings))
            signal = shots.frame_signal(raw, facts["video"]["fps"])
    found = shots.find_shots(signal, facts["duration_s"], settings)
    with staging(out_dir) as stage:
        shots.render_keyframes(video, facts, found, stage.dir, kept_frames(out_dir))
        write_json(stage.dir / "shots.json", {
            "rules": {"fps": signal["fps"], "cut_change": settings.shot_cut_change, "cut_ratio": settings.shot_cut_ratio,
                      "dark_luma": settings.shot_dark_luma, "min_shot_s": settings.shot_min_s},
            "shots": found,
        })
    return stage.published


def make_tracks(detections_json: Path, out_dir: Path, settings: Settings) -> list[str]:
    return _publish_json(out_dir, "tracks.json", tracks_mod.link(read_json(detections_json), settings))


def make_entities(video: Path, detections_json: Path, out_dir: Path, settings: Settings) -> list[str]:
    """entities.json and evidence frames. With shots.json beside it, ranges end at hard cuts; with
    tracks.json, ranges name their tracks, a track continuing across a cut keeps its range whole,
    and each label counts its distinct objects."""
    detections = read_json(detections_json)
    shots_json, tracks_json = Path(out_dir) / "shots.json", Path(out_dir) / "tracks.json"
    cuts = shots.cut_times(read_json(shots_json)["shots"]) if shots_json.is_file() else []
    track_of = tracks_mod.track_of(read_json(tracks_json)) if tracks_json.is_file() else None
    ranges = entities_mod.aggregate(detections, settings, cuts, track_of)
    with staging(out_dir) as stage:
        entities_mod.render_evidence(video, (detections["frame_width"], detections["frame_height"]), ranges, stage.dir,
                                     kept_frames(out_dir))
        write_json(stage.dir / "entities.json", {
            "rules": {"sample_interval_s": round(1 / detections["sample_fps"], 6), "gap_s": settings.entity_gap_s,
                      "min_duration_s": settings.entity_min_duration_s,
                      "min_peak_confidence": settings.entity_min_peak_confidence,
                      "min_confidence": detections["min_confidence"], "cuts_split_ranges": shots_json.is_file(),
                      "tracked": track_of is not None},
            "entities": ranges,
            "labels": entities_mod.label_counts(ranges) if track_of is not None else [],
        })
    return stage.published


def read_text(video: Path, out_dir: Path, settings: Settings) -> list[str]:
    """ocr.json: on-screen text as entities of kind "text", each with its evidence frame under text/."""
    facts = _facts(out_dir)
    found = ocr.read_text(video, facts, settings)
    with staging(out_dir) as stage:
        ocr.render_evidence(video, facts, found["texts"], stage.dir)
        write_json(stage.dir / "ocr.json", found)
    return stage.published


def step_summary(name: str, out_dir: Path) -> dict | None:
    """What a step's record says of its result beyond its files, small whatever the video's length
    (ocr: how many texts and overlays, and the wall clock found or why none was)."""
    if name == "speakers":
        found = read_json(Path(out_dir) / "speakers.json")
        return {"speakers": len(found["speakers"]), "turns": len(found["turns"])}
    if name != "ocr":
        return None
    found = read_json(Path(out_dir) / "ocr.json")
    return {"texts": len(found["texts"]), "overlays": len(found["overlays"]),
            "wall_clock": (found["wall_clock"] or {}).get("start", ""), "wall_clock_note": found["wall_clock_note"]}


def succeeded(summary: dict | None) -> dict:
    """A succeeded step's entry in a manifest or report: its status and, if any, its summary."""
    return {"status": Status.SUCCEEDED, **({"summary": summary} if summary else {})}


def make_exports(out_dir: Path, source: dict, steps: dict[str, dict],
                 fetch_pictures: Callable[[list[str]], None] | None = None, names: dict | None = None) -> list[str]:
    """report.json, entities.csv, transcript.csv, report.pdf from the artifacts in out_dir;
    `fetch_pictures` brings the pictures the PDF shows into out_dir first (the index step);
    `names`: what the analyst named the speakers."""
    report = reports.build_report(out_dir, source, steps, overall_status(steps), names)
    if fetch_pictures:
        fetch_pictures(report_pdf.pdf_pictures(report))
    with staging(out_dir) as stage:
        write_json(stage.dir / "report.json", report)
        (stage.dir / "entities.csv").write_text(reports.entities_csv(report), encoding="utf-8", newline="")
        (stage.dir / "transcript.csv").write_text(reports.transcript_csv(report), encoding="utf-8", newline="")
        (stage.dir / "report.pdf").write_bytes(report_pdf.report_pdf(report, out_dir))
    return stage.published


# Every stage as (video, out_dir, settings) -> published paths, and the files of out_dir it reads.
STAGES: dict[str, Callable[[Path, Path, Settings], list[str]]] = {
    "probe": probe,
    "downscale": downscale,
    "transcribe": transcribe,
    "speakers": find_speakers,
    "translate": translate,
    "subtitles": lambda video, out_dir, settings: make_subtitles(Path(out_dir) / "transcript.raw.json", out_dir, settings),
    "detect": detect,
    "shots": find_shots,
    "tracks": lambda video, out_dir, settings: make_tracks(Path(out_dir) / "detections.json", out_dir, settings),
    "ocr": read_text,
    "entities": lambda video, out_dir, settings: make_entities(video, Path(out_dir) / "detections.json", out_dir, settings),
}
NEEDS_VIDEO = {"probe", "downscale", "transcribe", "speakers", "translate", "detect", "shots", "entities", "ocr"}
# What a step reused rather than run brings to the steps after it in its task: its outputs that
# they read (never the heavy ones).
READ_BY_LATER = {f for reads in STEP_READS.values() for f in reads}
# Probe always runs: it is what checks the upload, and it takes seconds.
REUSABLE = set(STEP_ORDER) - {"probe"}


# ---------------------------------------------------------------- analyze

def overall_status(steps: dict[str, dict]) -> str:
    """PARTIAL when a step failed (the steps that needed it were skipped); SUCCEEDED otherwise: a
    step that chose not to run (StepSkipped) is no failure (probe itself always succeeded)."""
    return Status.PARTIAL if any(s["status"] == Status.FAILED for s in steps.values()) else Status.SUCCEEDED


def build_manifest(source: dict, steps: dict[str, dict], artifacts: list[dict]) -> dict:
    """The manifest of a run, local or in the cloud."""
    return {
        "schema": MANIFEST_SCHEMA,
        "source": source,
        "status": overall_status(steps),
        "steps": {name: steps[name] for name in STEP_ORDER if name in steps},
        "artifacts": sorted(artifacts, key=lambda a: a["path"]),
    }


def analyze(video: Path, out_dir: Path, settings: Settings, progress: Progress | None = None) -> dict:
    """Run every stage in-process; write manifest.json; return {manifest, timings}.

    Probe failing means the input is refused: InvalidMedia propagates and nothing is written.
    After probe, four branches run: renditions (downscale), speech (transcribe -> speakers, subtitles)
    vision (detect -> shots, tracks, entities) and text (ocr). A failing step is recorded with its
    error and the steps that need it are skipped; the others go on, and the job ends PARTIAL
    instead of SUCCEEDED. The manifest lists only this run's artifacts.
    """
    video, out_dir = Path(video), Path(out_dir)
    progress = progress or Progress()
    steps: dict[str, dict] = {}
    timings: dict[str, float] = {}
    published: list[str] = []

    def run(name: str, action: Callable[[], list[str]]) -> None:
        progress.say(f"  {name} ...")
        started = time.perf_counter()
        try:
            published.extend(action())
            steps[name] = succeeded(step_summary(name, out_dir))
        except StepSkipped as why:
            steps[name] = {"status": Status.SKIPPED, "error": str(why)}
        except Exception as err:  # a bug must not stop sibling branches; it is recorded, not swallowed
            steps[name] = {"status": Status.FAILED, "error": error_message(err)}
        timings[name] = round(time.perf_counter() - started, 3)
        progress.say(f"  {name} {steps[name]['status'].lower()} in {timings[name]:.1f} s"
                     + (f": {steps[name]['error']}" if "error" in steps[name] else ""))

    progress.say(f"analyzing {video.name}")
    started = time.perf_counter()
    published.extend(probe(video, out_dir, settings))
    steps["probe"] = {"status": Status.SUCCEEDED}
    timings["probe"] = round(time.perf_counter() - started, 3)
    with progress.listening():
        for branch in BRANCHES.values():
            try:
                for name in branch:
                    if blocker := blocked_by(name, steps):
                        steps[name] = {"status": Status.SKIPPED, "error": f"{blocker} failed"}
                    else:
                        run(name, lambda name=name: STAGES[name](video, out_dir, settings))
            finally:
                discard_kept_frames(out_dir)

    source = {"file_name": video.name, "size_bytes": video.stat().st_size, "sha256": sha256_file(video)}
    published.extend(make_exports(out_dir, source, steps))
    manifest = build_manifest(source, steps, [describe_artifact(out_dir, rel) for rel in set(published)])
    write_json(out_dir / "manifest.json", manifest)
    return {"manifest": manifest, "timings": timings}
