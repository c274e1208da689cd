"""ffmpeg/ffprobe work: probe, renditions, thumbnails, single frames (sampled frames: frames.py).

Paths reach ffmpeg as `file:` URLs built from absolute paths, so a hostile name (leading
`-`, a `proto:` prefix, spaces, unicode) is only ever a file name, never an option or protocol.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import ffmpeg

from reelscope.errors import InvalidMedia, StageFailed
from reelscope.settings import Settings

GLOBAL_ARGS = ("-nostdin", "-hide_banner", "-loglevel", "error")


def file_url(path: Path) -> str:
    return "file:" + str(Path(path).resolve())


def decode_threads(settings: Settings) -> int:
    """Threads for each ffmpeg decoder and filter graph: REELSCOPE_FFMPEG_THREADS, or by default a
    third of the cores. In local mode the three branches share one machine; ffmpeg's own default
    (every core, in frames and slices) spent 1.6x the CPU time decoding a 720p H.264 file for the
    same wall time on 2 cores (docs/BENCHMARKS.md). A deployment sets each job's vCPUs."""
    return settings.ffmpeg_threads or max(1, (os.cpu_count() or 1) // 3)


def ffmpeg_input(path: Path, threads: int, **options):
    return ffmpeg.input(file_url(path), threads=threads, **options)


def ffmpeg_global_args(threads: int) -> tuple[str, ...]:
    return (*GLOBAL_ARGS, "-filter_threads", str(threads))


def run_ffmpeg(stream, what: str, path: Path, threads: int | None = None) -> None:
    try:
        args = GLOBAL_ARGS if threads is None else ffmpeg_global_args(threads)
        stream.global_args(*args).run(capture_stdout=True, capture_stderr=True, overwrite_output=True)
    except ffmpeg.Error as err:
        raise StageFailed(f"{Path(path).name}: {what} failed: {diagnostic(err.stderr)}") from None


def diagnostic(stderr: bytes | None, lines: int = 2) -> str:
    """ffmpeg's last error lines, without file URLs and "[demuxer @ 0x...]" prefixes."""
    text = (stderr or b"").decode("utf-8", "replace")
    text = re.sub(r"file:\S*?: |\[[^\]]+ @ 0x[0-9a-f]+\] ", "", text)
    return " / ".join(line.strip() for line in text.strip().splitlines()[-lines:]) or "no diagnostic from ffmpeg"


def even(x: float) -> int:
    """Nearest even integer >= 2 (H.264 with 4:2:0 chroma needs even dimensions)."""
    return max(2, int(round(x / 2)) * 2)


def _rate(value: str | None) -> float:
    try:
        rate = Fraction(value or "0/1")
    except (ValueError, ZeroDivisionError):
        return 0.0
    return float(rate)


# ---------------------------------------------------------------- probe

def probe(path: Path, settings: Settings) -> dict:
    """Media facts of a video file, or InvalidMedia naming the file and the reason."""
    path = Path(path)
    if not path.is_file():
        raise InvalidMedia(path, "a folder, not a video file" if path.is_dir() else "no such file")
    size = path.stat().st_size
    if size == 0:
        raise InvalidMedia(path, "file is empty (0 bytes)")
    if size > settings.max_bytes:
        raise InvalidMedia(path, f"file is {size} bytes, over the limit of {settings.max_bytes} (REELSCOPE_MAX_BYTES)")
    try:
        info = ffmpeg.probe(file_url(path), v="error")
    except ffmpeg.Error as err:
        raise InvalidMedia(path, f"not a readable media file ({diagnostic(err.stderr)})") from None

    streams = info.get("streams", [])
    video = next((s for s in streams if s.get("codec_type") == "video"
                  and not s.get("disposition", {}).get("attached_pic")), None)
    tracks = [s for s in streams if s.get("codec_type") == "audio"]
    audio = tracks[0] if tracks else None
    if video is None:
        kind = "an audio-only file" if audio else "a file without audio or video"
        raise InvalidMedia(path, f"no video stream: {kind}")
    fmt = info.get("format", {})
    fps = _rate(video.get("avg_frame_rate")) or _rate(video.get("r_frame_rate"))
    elementary = fmt.get("format_name") in ELEMENTARY_STREAMS
    duration = _elementary_duration(path, fps) if elementary else float(fmt.get("duration") or video.get("duration") or 0)
    if duration <= 0 or fmt.get("format_name", "").endswith("_pipe") or fmt.get("format_name") == "image2":
        raise InvalidMedia(path, "no duration: a still image or an unreadable stream, not a video")
    if duration > settings.max_duration_s:
        raise InvalidMedia(path, f"duration {duration:.1f} s is over the limit of "
                                 f"{settings.max_duration_s:.0f} s (REELSCOPE_MAX_DURATION_S)")
    _check_decodes_to_the_end(path, duration, decode_threads(settings))

    rotation = _rotation(video)
    width, height = int(video["width"]), int(video["height"])
    display = (height, width) if rotation in (90, 270) else (width, height)
    return {
        "file_name": path.name,
        "size_bytes": size,
        "container": fmt.get("format_name", ""),
        "duration_s": round(duration, 3),
        "bit_rate": int(fmt.get("bit_rate") or 0),
        "video": {
            "codec": video.get("codec_name", ""),
            "width": width,
            "height": height,
            "rotation": rotation,
            "display_width": display[0],
            "display_height": display[1],
            "fps": round(fps, 3),
            "pix_fmt": video.get("pix_fmt", ""),
            "profile": video.get("profile", ""),
            "bit_rate": int(video.get("bit_rate") or 0),
            **({"timing": f"an elementary stream without timestamps: its frames counted at the stream's rate "
                          f"({round(fps, 3)} fps), as ffmpeg times them"} if elementary else {}),
        },
        "audio": None if audio is None else {
            "codec": audio.get("codec_name", ""),
            "sample_rate": int(audio.get("sample_rate") or 0),
            "channels": int(audio.get("channels") or 0),
            "tracks": len(tracks),  # all of them are heard (audio_heard)
            # after the video's first frame (DVRs and edited files): silence is heard before it
            "start_s": round(_start(audio) - _start(video), 3),
        },
        "has_audio": audio is not None,
    }


# Video without a container (a CCTV export `export.h264`): no duration, no timestamps; ffmpeg times
# its frames at the rate the stream declares (25 when it declares none), and so do we.
ELEMENTARY_STREAMS = {"h264", "hevc", "mpegvideo", "m4v"}


def _elementary_duration(path: Path, fps: float) -> float:
    """An elementary stream's duration: its frames (packets, read without decoding) at `fps`."""
    try:
        counted = ffmpeg.probe(file_url(path), v="error", count_packets=None, select_streams="v:0",
                               show_entries="stream=nb_read_packets")
    except ffmpeg.Error as err:
        raise InvalidMedia(path, f"an elementary video stream whose frames cannot be read ({diagnostic(err.stderr)})") from None
    frames = int((counted.get("streams") or [{}])[0].get("nb_read_packets") or 0)
    return frames / fps if fps > 0 else 0.0


def _start(stream: dict) -> float:
    try:
        return float(stream.get("start_time") or 0)
    except ValueError:
        return 0.0


def audio_tracks(facts: dict) -> int:
    return int((facts.get("audio") or {}).get("tracks", 1)) if facts["has_audio"] else 0


def audio_heard(source, tracks: int):
    """The audio as one listener hears it: every audio track mixed (an interview recorder writes a
    microphone a track, and the first may be silent), on the video's timeline (a track that starts
    after the first frame is preceded by silence, not moved to 0; encoder priming is trimmed)."""
    heard = [source[f"a:{i}"] for i in range(max(tracks, 1))]
    mixed = heard[0] if len(heard) == 1 else ffmpeg.filter(heard, "amix", inputs=len(heard), normalize=0,
                                                           duration="longest", dropout_transition=0)
    return mixed.filter("aresample", first_pts=0)


def _rotation(video: dict) -> int:
    for side in video.get("side_data_list", []):
        if "rotation" in side:
            return int(round(float(side["rotation"]))) % 360
    return int(video.get("tags", {}).get("rotate", 0)) % 360


def _check_decodes_to_the_end(path: Path, duration: float, threads: int) -> None:
    """Decode the last two seconds: a truncated file whose index survived fails here."""
    stream = ffmpeg_input(path, threads, ss=max(0.0, duration - 2.0)).output("-", f="null")
    proc = subprocess.run(stream.global_args(*ffmpeg_global_args(threads)).compile(), capture_output=True)
    if proc.returncode != 0 or b"partial file" in proc.stderr:
        raise InvalidMedia(path, f"truncated or corrupt: the end of the file cannot be decoded ({diagnostic(proc.stderr, 1)})")


# ---------------------------------------------------------------- renditions

def plan_renditions(facts: dict, ladder: tuple[int, ...]) -> list[dict]:
    """Rungs of the ladder at or below the source's short side; aspect kept, dimensions even.

    A ladder height is the short side, so a vertical 1080x1920 source at "720p" gives 720x1280.
    A source smaller than every rung gets one rendition at its own size (never upscaled).
    """
    width, height = facts["video"]["display_width"], facts["video"]["display_height"]
    short = min(width, height)
    rungs = sorted({h for h in ladder if h <= short}, reverse=True) or [short - short % 2]
    return [{"name": f"{rung}p", "width": even(width * rung / short), "height": even(height * rung / short)}
            for rung in rungs]


BROWSER_H264_PROFILES = {"Constrained Baseline", "Baseline", "Main", "High"}


def copyable(facts: dict, rung: dict, settings: Settings) -> bool:
    """Whether the source already is this rendition: its size, upright, H.264 in a profile and
    pixel format every browser decodes, in an MP4/MOV, at a bit rate fit to stream."""
    video = facts["video"]
    bit_rate = video.get("bit_rate") or facts["bit_rate"]
    return ((video["display_width"], video["display_height"]) == (rung["width"], rung["height"])
            and video["rotation"] == 0 and video["codec"] == "h264" and video["pix_fmt"] in ("yuv420p", "yuvj420p")
            and video.get("profile") in BROWSER_H264_PROFILES and "mp4" in facts["container"]
            and 0 < bit_rate <= settings.copy_max_bit_rate)


def _rendition_audio(source, facts: dict) -> tuple[list, dict]:
    """Every rendition's audio stream and its options: the source's one AAC track as it is
    (re-encoding it cost the 480p rendition 10 s of CPU per 10 minutes for no gain), other audio
    made AAC, several tracks mixed into one (audio_heard: a player plays only the first)."""
    tracks = audio_tracks(facts)
    if not tracks:
        return [], {}
    encoded = {"acodec": "aac", "audio_bitrate": "128k"}
    if tracks > 1:
        return [audio_heard(source, tracks)], encoded
    return [source["a:0"]], {"acodec": "copy"} if facts["audio"]["codec"] == "aac" else encoded


def _copy_rendition(path: Path, facts: dict, target: Path) -> None:
    """The source's video stream as it is (and its audio, _rendition_audio), index first."""
    source = ffmpeg.input(file_url(path))
    audio, options = _rendition_audio(source, facts)
    run_ffmpeg(ffmpeg.output(source["v:0"], *audio, file_url(target), vcodec="copy", movflags="+faststart", **options),
         "copying the rendition", path)


def encode_renditions(path: Path, facts: dict, settings: Settings, out_dir: Path) -> dict:
    """One decode feeding every rendition to encode and the thumbnails; a rendition the source
    already is, copied; then a poster. Returns the index."""
    plan = plan_renditions(facts, settings.ladder)
    copied = [rung for rung in plan if copyable(facts, rung, settings)]
    for rung in copied:
        _copy_rendition(path, facts, out_dir / f"{rung['name']}.mp4")
    encoded = [rung for rung in plan if rung not in copied]
    threads = decode_threads(settings)
    source = ffmpeg_input(path, threads)
    video = source.video.split()
    audio, audio_options = _rendition_audio(source, facts)
    if audio and audio_tracks(facts) > 1:  # a mix is a filter's output: one use each
        mixed = audio[0].asplit()
        audio = [mixed[i] for i in range(len(encoded))]
    else:
        audio = audio * len(encoded)
    outputs = []
    for i, rung in enumerate(encoded):
        scaled = video[i].filter("scale", rung["width"], rung["height"]).filter("setsar", 1)
        outputs.append(ffmpeg.output(
            scaled, *audio[i:i + 1], file_url(out_dir / f"{rung['name']}.mp4"),
            vcodec="libx264", preset=settings.x264_preset, crf=settings.x264_crf, pix_fmt="yuv420p",
            movflags="+faststart", **audio_options))
    thumbs_dir = out_dir / "thumbnails"
    thumbs_dir.mkdir()
    thumbs = (video[len(encoded)].filter("fps", fps=f"1/{settings.thumbnail_interval_s}", eof_action="pass")
              .filter("scale", settings.thumbnail_width, -2))
    outputs.append(ffmpeg.output(thumbs, file_url(thumbs_dir / "thumb_%05d.jpg"), **{"q:v": 4}))
    run_ffmpeg(ffmpeg.merge_outputs(*outputs), "encoding renditions", path, threads)

    poster_at = round(min(facts["duration_s"] * 0.1, 5.0), 3)
    top = plan[0]
    extract_frame(path, poster_at, out_dir / "poster.jpg", top["width"], top["height"])

    renditions = []
    for rung in plan:
        rendition = out_dir / f"{rung['name']}.mp4"
        renditions.append({**rung, "path": rendition.name, "size_bytes": rendition.stat().st_size,
                           "made_by": "stream copy" if rung in copied else "x264"})
    thumbnails = [{"t": round(i * settings.thumbnail_interval_s, 3), "path": f"thumbnails/{p.name}"}
                  for i, p in enumerate(sorted(thumbs_dir.iterdir()))]
    return {"renditions": renditions, "poster": {"t": poster_at, "path": "poster.jpg"}, "thumbnails": thumbnails}


def extract_frame(path: Path, t: float, out_jpg: Path, width: int, height: int, sample: Path | None = None) -> Path:
    """The frame shown at time t as a width x height JPEG: `sample`, the frame a decode kept at t
    (frames.KeptFrames.path_at), when there is one (no decoding), else an accurate seek (the first
    frame at or after t)."""
    if sample:
        from PIL import Image

        with Image.open(sample) as image:
            if image.size == (width, height):
                shutil.copyfile(sample, out_jpg)
            else:
                image.resize((width, height), Image.Resampling.LANCZOS).save(out_jpg, quality=95)
        return Path(out_jpg)
    # A seek in the input jumps there; a stream without an index (an elementary stream) cannot be
    # sought, and is decoded up to t instead.
    for seek_input in (True, False):
        source = ffmpeg.input(file_url(path), **({"ss": t} if seek_input else {}))
        stream = (source.video.filter("scale", width, height)
                  .output(file_url(out_jpg), vframes=1, **({} if seek_input else {"ss": t}), **{"q:v": 2}))
        run_ffmpeg(stream, f"extracting the frame at {t:.3f} s", path)
        if Path(out_jpg).exists():
            return Path(out_jpg)
    raise StageFailed(f"{Path(path).name}: no frame at {t:.3f} s")


@contextlib.contextmanager
def ffmpeg_output(args: list[str], path: Path, what: str) -> Iterator[subprocess.Popen]:
    """ffmpeg running `args`, its stdout for the caller to read, its stderr kept aside. Leaving the
    block early (the caller stopped, or failed) kills it; ffmpeg failing raises StageFailed naming
    `what` ("decoding audio") and ffmpeg's own words."""
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=errors)
        try:
            yield proc
        except BaseException:
            proc.kill()
            raise
        finally:
            proc.stdout.close()
            returncode = proc.wait()
        if returncode != 0:
            errors.seek(0)
            raise StageFailed(f"{Path(path).name}: {what} failed: {diagnostic(errors.read())}")
