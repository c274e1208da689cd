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
                  "fetch_allow_loopback", "state_dir", "state_save_every_s")
COCO_ANIMALS = ("bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe")


@dataclasses.dataclass(frozen=True)
class Settings:
    # Where converted/downloaded model weights are cached.
    model_dir: str = str(Path.home() / ".cache" / "reelscope" / "models")

    # probe: inputs over these limits are refused before any work is done.
    max_duration_s: float = 4 * 3600.0
    max_bytes: int = 10 * 1024**3

    # downscale: target short-side heights; renditions above the source are skipped (no upscale).
    ladder: tuple[int, ...] = (720, 480)
    thumbnail_interval_s: float = 10.0
    thumbnail_width: int = 320
    x264_preset: str = "veryfast"
    x264_crf: int = 23
    # threads for each ffmpeg decode and filter graph; 0 = a third of the cores (media.decode_threads)
    ffmpeg_threads: int = 0
    # a rendition the source already is (same size, H.264 a browser plays, at most this bit rate) is copied, not encoded
    copy_max_bit_rate: int = 6_000_000

    # transcribe: "" means the bundled multilingual base model (CTranslate2, converted at load).
    whisper_model: str = ""
    whisper_engine: str = "auto"  # auto | ctranslate2 | openai-whisper (transcribe.py)
    whisper_compute_type: str = ""  # ctranslate2: "" = int8 on CPU, float16 on CUDA
    whisper_beam_size: int = 2  # ctranslate2: the narrowest beam whose WER beats openai-whisper's (docs/BENCHMARKS.md)
    whisper_batch_size: int = 0  # ctranslate2: VAD chunks decoded at once; 0 = 1 on CPU, 16 on CUDA
    detect_engine: str = "auto"  # auto | torch | openvino | onnxruntime (detect.py)
    whisper_threads: int = 0  # ctranslate2 on CPU: threads; 0 = half the cores (models.inference_threads)
    whisper_language: str = ""  # "" = detect
    # audio transcribed at once (each window detects its language): memory holds one window, whatever the length
    whisper_window_s: float = 600.0

    # speakers (speakers.py): prints closer than this cosine distance are one voice; regions shorter
    # than speaker_min_region_s take the nearest voice; one speaker's regions are one turn across
    # pauses up to speaker_turn_gap_s
    speaker_threshold: float = 0.25
    speaker_min_region_s: float = 1.0
    speaker_turn_gap_s: float = 2.0

    # translate (translate.py): the Whisper models allowed to translate, by a name their folder or file holds
    translate_models: tuple[str, ...] = ("small", "medium", "large", "large-v1", "large-v2", "large-v3")

    # detect
    yolo_weights: str = "yolov8n.pt"
    detect_fps: float = 1.0
    detect_batch: int = 8
    detect_imgsz: int = 640
    detect_min_confidence: float = 0.25
    animal_labels: tuple[str, ...] = COCO_ANIMALS

    # entities: the timeline rules (see entities.py)
    entity_gap_s: float = 1.0
    entity_min_duration_s: float = 0.5
    entity_min_peak_confidence: float = 0.5

    # tracks: a track outlives missing samples for this long (tracks.py)
    track_gap_s: float = 2.0

    # ocr: on-screen text (ocr.py): sampling, when a frame is read again, the confidence kept
    ocr_fps: float = 1.0
    ocr_max_side: int = 1280  # text ~24 px high at 640 px loses its spaces when read ("FREECOFFEE")
    ocr_change: float = 6.0
    ocr_min_confidence: float = 0.6
    ocr_threads: int = 0  # ONNX Runtime threads of each model; 0 = half the cores (models.inference_threads)
    # wall clock from a burned-in date and time (wallclock.py): the readings that must agree, and
    # how to read 02/07/2025 when neither number is over 12: auto (MDY beside AM/PM, else DMY) | DMY | MDY
    clock_min_readings: int = 5
    clock_date_order: str = "auto"

    # shots: the boundary rules (see shots.py); changes and luma on the 0-255 scale
    shot_cut_change: float = 15.0
    shot_cut_ratio: float = 3.0
    shot_dark_luma: float = 24.0
    shot_min_s: float = 0.5

    # subtitles: readability bounds
    subtitle_max_chars: int = 42
    subtitle_max_lines: int = 2
    subtitle_max_cue_s: float = 7.0
    subtitle_min_cue_s: float = 0.8

    # cloud: where jobs live (set by the deployment, or by local mode)
    bucket: str = ""
    table: str = ""
    state_machine_arn: str = ""
    # renditions of media up to these limits are made in the downscale Lambda, larger on Batch
    lambda_downscale_max_s: float = 600.0
    lambda_downscale_max_bytes: int = 2 * 1024**3
    # API: how long a presigned upload stays valid; share links' default and longest lives
    upload_expiry_s: int = 300
    share_default_s: int = 7 * 86400
    share_max_s: int = 30 * 86400
    # URL ingest: the function that fetches, and loopback allowed (local tests only). A fetch ends
    # FAILED past its deadline (under the fetch Lambda's 15-minute limit, so the reason is recorded)
    # or when its average rate, judged after fetch_rate_grace_s, is under the minimum.
    fetch_function: str = "reelscope-fetch"
    fetch_deadline_s: float = 840.0
    fetch_min_bytes_per_s: int = 32 * 1024
    fetch_rate_grace_s: float = 30.0
    fetch_allow_loopback: bool = False
    # local mode: moto's objects and items are kept here between runs, saved this often while jobs
    # run (what a kill -9 can lose: running the job again reuses the steps saved as ended)
    state_dir: str = str(Path.home() / ".local" / "state" / "reelscope")
    state_save_every_s: float = 30.0

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
