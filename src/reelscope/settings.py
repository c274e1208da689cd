"""One settings object, read from REELSCOPE_* environment variables.

Every field `name` is set by the variable `REELSCOPE_<NAME>`; tuples are comma-separated.
Only `Settings.from_env` reads the environment: the rest of the code receives a Settings.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

from reelscope.errors import ReelscopeError

# Fields that say where things are or how fast they go, never what a step finds. A step that
# succeeded is reused when the others that it depends on are the same (pipeline.STEP_SETTINGS).
PLACE_AND_PACE = ("model_dir", "ffmpeg_threads", "whisper_threads", "ocr_threads", "bucket", "table", "state_machine_arn",
                  "lambda_downscale_max_s", "lambda_downscale_max_bytes", "upload_expiry_s", "share_default_s",
                  "share_max_s", "fetch_function", "fetch_deadline_s", "fetch_min_bytes_per_s", "fetch_rate_grace_s",
                  "fetch_allow_loopback", "state_dir", "state_save_every_s", "audit_table", "user_pool_id",
                  "user_pool_client_id", "user_pool_domain", "jwks_url", "signing_key_id")
COCO_ANIMALS = ("bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe")


SECTIONS = {
    "limits": "what probe refuses before any work is done",
    "media": "renditions, thumbnails and the ffmpeg work behind them",
    "speech": "transcript, languages, speakers, translation, subtitles",
    "vision": "objects, tracks, shots, the timeline, on-screen text and the wall clock",
    "service": "where jobs live, the API, URL ingest, local mode (set by the deployment or local mode)",
    "machine": "where weights are kept and how many threads each engine takes (never what a step finds)",
}


def setting(default, section: str, meaning: str):
    """A field of Settings: its default, its section, and what it means (README's Configuration
    table and `reelscope settings` are made from these)."""
    return dataclasses.field(default=default, metadata={"section": section, "meaning": meaning})


@dataclasses.dataclass(frozen=True)
class Settings:
    max_duration_s: float = setting(4 * 3600.0, "limits", "longer media are refused")
    max_bytes: int = setting(10 * 1024**3, "limits", "larger files are refused")

    ladder: tuple[int, ...] = setting((720, 480), "media", "rendition heights (short side); none above the source")
    thumbnail_interval_s: float = setting(10.0, "media", "a thumbnail every this many seconds")
    thumbnail_width: int = setting(320, "media", "thumbnail width in pixels")
    x264_preset: str = setting("veryfast", "media", "x264 preset of the renditions")
    x264_crf: int = setting(23, "media", "x264 quality of the renditions")
    copy_max_bit_rate: int = setting(6_000_000, "media", "a rendition the source already is (same size, upright H.264 "
                                     "a browser plays, MP4) at most this many bits/s is a stream copy")

    whisper_model: str = setting("", "speech", "\"\" the bundled multilingual base; a CTranslate2 folder, a .pt file or "
                                 "a model name (README: Models)")
    whisper_engine: str = setting("auto", "speech", "auto | ctranslate2 | openai-whisper (whisper_models.py)")
    whisper_compute_type: str = setting("", "speech", "ctranslate2: \"\" = int8 on CPU, float16 on CUDA")
    whisper_beam_size: int = setting(2, "speech", "ctranslate2's beam (docs/BENCHMARKS.md: precision and beam)")
    whisper_batch_size: int = setting(0, "speech", "ctranslate2: VAD chunks decoded at once; 0 = 1 on CPU, 16 on CUDA")
    whisper_language: str = setting("", "speech", "\"\" = detect; a code pins every segment's language")
    whisper_window_s: float = setting(600.0, "speech", "audio transcribed at once (memory holds one window; each ends "
                                      "in a pause and detects its language)")
    whisper_doubt_probability: float = setting(0.6, "speech", "a stretch whose words average a lower probability is "
                                               "heard again: its own language detected, transcribed in it (transcribe.py)")
    whisper_languages: tuple[str, ...] = setting((), "speech", "the languages the footage may hold (codes): a doubtful "
                                                 "stretch's language is chosen among them; empty: any Whisper knows")
    speaker_threshold: float = setting(0.25, "speech", "voice prints closer than this cosine distance are one speaker")
    # 1.2 s: 75% of a 1.6 s window, the coverage Resemblyzer asks of an utterance's last partial
    # window (it embeds a shorter utterance padded all the same); shorter prints are too
    # unsteady (measured: a repeated 1.02 s phrase became a second speaker in 15 minutes of one voice)
    speaker_min_region_s: float = setting(1.2, "speech", "shorter voiced stretches take the nearest speaker")
    speaker_turn_gap_s: float = setting(2.0, "speech", "one speaker's stretches this close are one turn")
    translate_models: tuple[str, ...] = setting(("small", "medium", "large", "large-v1", "large-v2", "large-v3"), "speech",
                                                "the Whisper models allowed to translate, by a name their folder or file holds")
    subtitle_max_chars: int = setting(42, "speech", "characters a subtitle line holds")
    subtitle_max_lines: int = setting(2, "speech", "lines a cue holds")
    subtitle_max_cue_s: float = setting(7.0, "speech", "a cue's longest time")
    subtitle_min_cue_s: float = setting(0.8, "speech", "a short cue is held this long when the next allows")

    yolo_weights: str = setting("yolov8n.pt", "vision", "a path, or a name looked up here and in REELSCOPE_MODEL_DIR "
                                "(README: Models)")
    detect_engine: str = setting("auto", "vision", "auto (openvino on CPU, torch on CUDA) | torch | openvino | onnxruntime")
    detect_fps: float = setting(1.0, "vision", "frames sampled per second")
    detect_batch: int = setting(8, "vision", "frames per inference batch")
    detect_imgsz: int = setting(640, "vision", "detector input size")
    detect_min_confidence: float = setting(0.25, "vision", "detections below are not recorded")
    animal_labels: tuple[str, ...] = setting(COCO_ANIMALS, "vision", "labels flagged \"animal\": true")
    entity_gap_s: float = setting(1.0, "vision", "a label's detections closer than this are one range (README: timeline rules)")
    entity_min_duration_s: float = setting(0.5, "vision", "shorter ranges are dropped")
    entity_min_peak_confidence: float = setting(0.5, "vision", "ranges never this sure are dropped")
    track_gap_s: float = setting(2.0, "vision", "a track outlives missed samples for this long")
    shot_cut_change: float = setting(15.0, "vision", "a frame this different from the one before (0-255) may be a cut")
    shot_cut_ratio: float = setting(3.0, "vision", "... and this many times the change around it")
    shot_dark_luma: float = setting(24.0, "vision", "frames darker than this are black (fades)")
    shot_min_s: float = setting(0.5, "vision", "shorter shots are merged")
    ocr_fps: float = setting(1.0, "vision", "frames read for on-screen text per second")
    ocr_max_side: int = setting(1280, "vision", "their long side (text ~24 px high at 640 px loses its spaces)")
    ocr_change: float = setting(6.0, "vision", "a frame is read again when it changed this much (0-255)")
    ocr_min_confidence: float = setting(0.6, "vision", "text lines kept")
    ocr_min_frames: int = setting(2, "vision", "a text seen in fewer sampled frames is audit material in ocr.json, "
                                  "not an entity (a misreading of a busy picture does not recur)")
    clock_min_readings: int = setting(5, "vision", "wall clock: readings that must agree for a piece")
    clock_date_order: str = setting("auto", "vision", "how 02/07/2025 is read when neither number is over 12: auto "
                                    "(MDY beside AM/PM, else DMY) | DMY | MDY")

    bucket: str = setting("", "service", "the media bucket")
    table: str = setting("", "service", "the jobs table")
    audit_table: str = setting("", "service", "the audit trail's table (append-only to the API)")
    user_pool_id: str = setting("", "service", "the Cognito user pool that signs people in; \"\": local mode's users")
    user_pool_client_id: str = setting("", "service", "the pool's app client of the pages and API clients")
    user_pool_domain: str = setting("", "service", "the pool's managed sign-in, https://DOMAIN")
    jwks_url: str = setting("", "service", "the pool's keys; \"\": its issuer's /.well-known/jwks.json")
    signing_key_id: str = setting("", "service", "the KMS key signing manifests; \"\": a key in the state folder")
    state_machine_arn: str = setting("", "service", "the pipeline's state machine")
    lambda_downscale_max_s: float = setting(600.0, "service", "longer media get renditions on Batch, not Lambda")
    lambda_downscale_max_bytes: int = setting(2 * 1024**3, "service", "larger files get renditions on Batch")
    upload_expiry_s: int = setting(300, "service", "how long a presigned upload stays valid")
    share_default_s: int = setting(7 * 86400, "service", "a share link's life when none is asked for")
    share_max_s: int = setting(30 * 86400, "service", "a share link's longest life")
    fetch_function: str = setting("reelscope-fetch", "service", "the function that fetches URLs")
    fetch_deadline_s: float = setting(840.0, "service", "a fetch fails past this (under the fetch Lambda's 15 minutes)")
    fetch_min_bytes_per_s: int = setting(32 * 1024, "service", "... or under this average rate")
    fetch_rate_grace_s: float = setting(30.0, "service", "... judged after this long")
    fetch_allow_loopback: bool = setting(False, "service", "loopback URLs allowed (local tests only)")
    state_dir: str = setting(str(Path.home() / ".local" / "state" / "reelscope"), "service",
                             "local mode's objects and items, kept between runs")
    state_save_every_s: float = setting(30.0, "service", "local mode saves this often while jobs run (what a kill -9 "
                                        "can lose: running the job again reuses the steps saved as ended)")

    model_dir: str = setting(str(Path.home() / ".cache" / "reelscope" / "models"), "machine",
                             "weights, and the converted and exported checkpoints")
    ffmpeg_threads: int = setting(0, "machine", "threads for each ffmpeg decode and filter graph; 0 = a third of the cores")
    whisper_threads: int = setting(0, "machine", "CTranslate2's CPU threads; 0 = half the cores")
    ocr_threads: int = setting(0, "machine", "ONNX Runtime threads of each text model; 0 = half the cores")

    @classmethod
    def described(cls) -> list[tuple[str, str, str, str]]:
        """(section, variable, default as written, meaning) of every setting, section by section."""
        order = list(SECTIONS)
        fields = sorted(dataclasses.fields(cls), key=lambda f: order.index(f.metadata["section"]))
        return [(f.metadata["section"], "REELSCOPE_" + f.name.upper(), shown(f.default), f.metadata["meaning"]) for f in fields]

    def results_affecting(self) -> dict:
        """The fields that may change what a step finds (all but PLACE_AND_PACE)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in PLACE_AND_PACE}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        values = {}
        for field in dataclasses.fields(cls):
            var = "REELSCOPE_" + field.name.upper()
            if var in environ:
                values[field.name] = _parse(var, environ[var], field.default)
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        positive = ("max_duration_s", "max_bytes", "thumbnail_interval_s", "detect_fps", "detect_batch", "whisper_beam_size",
                    "detect_imgsz", "subtitle_max_chars", "subtitle_max_lines", "subtitle_max_cue_s",
                    "fetch_deadline_s", "shot_cut_change", "shot_cut_ratio", "ocr_fps", "ocr_max_side", "clock_min_readings",
                    "state_save_every_s", "whisper_window_s")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ReelscopeError(f"setting {name} must be positive, got {getattr(self, name)!r}")
        for name in ("ffmpeg_threads", "whisper_threads", "ocr_threads"):  # 0 = the default count
            if getattr(self, name) < 0:
                raise ReelscopeError(f"setting {name} must be at least 0, got {getattr(self, name)!r}; 0 means the default")
        if not self.ladder or any(h < 16 for h in self.ladder):
            raise ReelscopeError(f"setting ladder must list heights of at least 16 px, got {self.ladder!r}")
        if self.clock_date_order not in ("auto", "DMY", "MDY"):
            raise ReelscopeError(f"setting clock_date_order must be auto, DMY or MDY, got {self.clock_date_order!r}")
        if not 0 <= self.detect_min_confidence <= 1:
            raise ReelscopeError("setting detect_min_confidence must be within 0..1")


def shown(value) -> str:
    """A setting's value as the environment would give it (tuples comma-separated; the home folder as ~)."""
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    if isinstance(value, bool):
        return str(value).lower()
    text = str(value)
    home = str(Path.home())
    return "~" + text[len(home):] if text.startswith(home + "/") else text if text else '""'


def markdown_table() -> str:
    """README's Configuration table, made from Settings (a test fails when the README's differs)."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for section in SECTIONS:
        rows.append(f"| **{section}** | | {SECTIONS[section]} |")
        rows += [f"| `{var}` | `{default}` | {meaning.replace('|', chr(92) + '|')} |"
                 for part, var, default, meaning in Settings.described() if part == section]
    return "\n".join(rows) + "\n"


def _parse(var: str, raw: str, default):
    try:
        if isinstance(default, bool):
            if raw.strip().lower() not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError(raw)
            return raw.strip().lower() in ("1", "true", "yes")
        if isinstance(default, tuple):
            item = type(default[0]) if default else str
            return tuple(item(part.strip()) for part in raw.split(",") if part.strip())
        return type(default)(raw)
    except ValueError:
        raise ReelscopeError(f"{var}={raw!r} is not a valid {type(default).__name__}") from None
