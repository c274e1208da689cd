"""The CDK app's configuration (context values) and what its constructs share."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import aws_logs as logs

from reelscope.pinned import PINNED

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Config:
    """CDK context values (cdk.json, or `cdk synth -c key=value`)."""

    stage: str = "dev"
    gpu_instance_types: tuple[str, ...] = ("g4dn.xlarge", "g5.xlarge")
    gpu_max_vcpus: int = 16
    cpu_max_vcpus: int = 16
    use_spot: bool = True
    # The GPU job's Whisper: "" the bundled base; a name (large-v3, medium...) with the URL of a .tar
    # of its CTranslate2 folder and that archive's sha256, fetched at image build, never at run time
    # (containers/gpu-batch/Dockerfile). A model named small or larger translates (translate.py).
    whisper_model: str = ""
    whisper_model_url: str = ""
    whisper_model_sha256: str = ""
    yolo_weights: str = "yolov8n.pt"
    # When containers/gpu-batch/models/ lacks that file, the image build fetches it from here and
    # checks it against this sha256 (never at run time; a mismatch fails the build). The default is
    # pinned (reelscope/pinned.py, as `reelscope models pull` fetches it); another checkpoint needs its own checksum.
    yolo_weights_url: str = PINNED["yolov8n"].url
    yolo_weights_sha256: str = PINNED["yolov8n"].sha256
    retention_days: int = 30
    alarm_email: str = ""

    def __post_init__(self) -> None:
        if self.whisper_model and not (self.whisper_model_url and self.whisper_model_sha256):
            raise ValueError(f"context whisperModel={self.whisper_model!r} needs whisperModelUrl (a .tar of its CTranslate2 "
                             "folder) and whisperModelSha256: the image fetches the weights at build, never at run time")

    @property
    def whisper_model_path(self) -> str:
        """REELSCOPE_WHISPER_MODEL everywhere (the same settings give the same step fingerprints)."""
        return f"/opt/reelscope/models/whisper-{self.whisper_model}" if self.whisper_model else ""

    @classmethod
    def from_context(cls, node) -> Config:
        def get(name, default):
            value = node.try_get_context(name)
            if value is None:
                return default
            if isinstance(default, bool):
                return value if isinstance(value, bool) else str(value).lower() == "true"
            if isinstance(default, tuple):
                return tuple(value) if isinstance(value, list) else tuple(v.strip() for v in str(value).split(","))
            return type(default)(value)

        def camel(name: str) -> str:  # the context key: gpu_max_vcpus -> gpuMaxVcpus
            first, *rest = name.split("_")
            return first + "".join(part.capitalize() for part in rest)

        return cls(**{f.name: get(camel(f.name), f.default) for f in dataclasses.fields(cls)})



_RETENTION = {1: "ONE_DAY", 3: "THREE_DAYS", 5: "FIVE_DAYS", 7: "ONE_WEEK", 14: "TWO_WEEKS", 30: "ONE_MONTH",
              60: "TWO_MONTHS", 90: "THREE_MONTHS", 120: "FOUR_MONTHS", 150: "FIVE_MONTHS", 180: "SIX_MONTHS",
              365: "ONE_YEAR", 400: "THIRTEEN_MONTHS", 545: "EIGHTEEN_MONTHS", 731: "TWO_YEARS", 1827: "FIVE_YEARS",
              3653: "TEN_YEARS"}


def retention(days: int) -> logs.RetentionDays:
    """CloudWatch Logs keeps only set periods: the shortest one that covers `days`."""
    return getattr(logs.RetentionDays, _RETENTION[min((d for d in _RETENTION if d >= days), default=3653)])


