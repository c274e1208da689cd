"""Convert a CTranslate2 Whisper model (model.bin + config.json) to an openai-whisper checkpoint.

CTranslate2 stores the same weights as openai-whisper under other names, with the self-attention
q/k/v projections fused into one matrix and the cross-attention k/v fused into another. Splitting
and renaming them gives a state dict that `whisper.load_model` reads like an official .pt file.
The key projection has no bias in openai-whisper (CTranslate2 stores zeros there).
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import torch

from reelscope.errors import ModelUnavailable

# CTranslate2 dtype ids (ctranslate2/specs/model_spec.py) -> torch dtypes we can dequantize-free load.
_DTYPES = {0: torch.float32, 4: torch.float16, 5: torch.bfloat16, 2: torch.int16, 3: torch.int32, 1: torch.int8}
_FLOAT_IDS = {0, 4, 5}


def read_model_bin(data: bytes, source: str) -> dict[str, torch.Tensor]:
    """Parse CTranslate2's model.bin (binary version >= 5) into named tensors."""
    offset = 0

    def take(fmt: str):
        nonlocal offset
        value = struct.unpack_from(fmt, data, offset)
        offset += struct.calcsize(fmt)
        return value[0]

    def take_string() -> str:
        nonlocal offset
        length = take("H")
        text = data[offset: offset + length - 1].decode("utf-8")
        offset += length
        return text

    version = take("I")
    if version < 5:
        raise ModelUnavailable(f"{source}: CTranslate2 binary version {version} is too old (need >= 5)")
    spec = take_string()
    if spec != "WhisperSpec":
        raise ModelUnavailable(f"{source}: a CTranslate2 {spec}, not a Whisper model")
    take("I")  # spec revision
    variables = {}
    for _ in range(take("I")):
        name = take_string()
        shape = [take("I") for _ in range(take("B"))]
        dtype_id = take("B")
        num_bytes = take("I")
        if name.endswith("weight_scale") or (shape and dtype_id not in _FLOAT_IDS):
            raise ModelUnavailable(f"{source}: quantized weights ({name}) are not supported; "
                                   "convert the model with --quantization float16")
        tensor = torch.frombuffer(bytearray(data[offset: offset + num_bytes]), dtype=_DTYPES[dtype_id])
        variables[name] = tensor.reshape(shape) if shape else tensor[0]
        offset += num_bytes
    for _ in range(take("I")):  # aliases, e.g. decoder/projection/weight -> decoder/embeddings/weight
        alias, target = take_string(), take_string()
        variables[alias] = variables[target]
    return variables


def _linear(out: dict, prefix: str, ct2: dict, scope: str) -> None:
    out[f"{prefix}.weight"] = ct2[f"{scope}/weight"]
    if f"{scope}/bias" in ct2:
        out[f"{prefix}.bias"] = ct2[f"{scope}/bias"]


def _norm(out: dict, prefix: str, ct2: dict, scope: str) -> None:
    out[f"{prefix}.weight"] = ct2[f"{scope}/gamma"]
    out[f"{prefix}.bias"] = ct2[f"{scope}/beta"]


def _fused(out: dict, prefixes: list[str], ct2: dict, scope: str) -> None:
    """Split a fused projection ([q;k;v] or [k;v]) into separate linears; `key` has no bias."""
    weights = ct2[f"{scope}/weight"].chunk(len(prefixes))
    biases = ct2[f"{scope}/bias"].chunk(len(prefixes))
    for prefix, weight, bias in zip(prefixes, weights, biases):
        out[f"{prefix}.weight"] = weight
        if not prefix.endswith(".key"):
            out[f"{prefix}.bias"] = bias


def _block(out: dict, prefix: str, ct2: dict, scope: str, cross: bool) -> None:
    _fused(out, [f"{prefix}.attn.{p}" for p in ("query", "key", "value")], ct2, f"{scope}/self_attention/linear_0")
    _linear(out, f"{prefix}.attn.out", ct2, f"{scope}/self_attention/linear_1")
    _norm(out, f"{prefix}.attn_ln", ct2, f"{scope}/self_attention/layer_norm")
    if cross:
        _linear(out, f"{prefix}.cross_attn.query", ct2, f"{scope}/attention/linear_0")
        _fused(out, [f"{prefix}.cross_attn.{p}" for p in ("key", "value")], ct2, f"{scope}/attention/linear_1")
        _linear(out, f"{prefix}.cross_attn.out", ct2, f"{scope}/attention/linear_2")
        _norm(out, f"{prefix}.cross_attn_ln", ct2, f"{scope}/attention/layer_norm")
    _linear(out, f"{prefix}.mlp.0", ct2, f"{scope}/ffn/linear_0")
    _linear(out, f"{prefix}.mlp.2", ct2, f"{scope}/ffn/linear_1")
    _norm(out, f"{prefix}.mlp_ln", ct2, f"{scope}/ffn/layer_norm")


def _layers(ct2: dict, side: str) -> int:
    return len({m.group(1) for name in ct2 if (m := re.match(rf"{side}/layer_(\d+)/", name))})


def to_whisper_checkpoint(ct2: dict[str, torch.Tensor]) -> dict:
    """{"dims": ..., "model_state_dict": ...}: the layout of openai-whisper's .pt files."""
    sd: dict[str, torch.Tensor] = {}
    for conv in ("conv1", "conv2"):
        sd[f"encoder.{conv}.weight"] = ct2[f"encoder/{conv}/weight"]
        sd[f"encoder.{conv}.bias"] = ct2[f"encoder/{conv}/bias"]
    sd["encoder.positional_embedding"] = ct2["encoder/position_encodings/encodings"]
    n_audio_layer, n_text_layer = _layers(ct2, "encoder"), _layers(ct2, "decoder")
    for i in range(n_audio_layer):
        _block(sd, f"encoder.blocks.{i}", ct2, f"encoder/layer_{i}", cross=False)
    _norm(sd, "encoder.ln_post", ct2, "encoder/layer_norm")
    sd["decoder.token_embedding.weight"] = ct2["decoder/embeddings/weight"]
    sd["decoder.positional_embedding"] = ct2["decoder/position_encodings/encodings"]
    for i in range(n_text_layer):
        _block(sd, f"decoder.blocks.{i}", ct2, f"decoder/layer_{i}", cross=True)
    _norm(sd, "decoder.ln", ct2, "decoder/layer_norm")

    conv1 = ct2["encoder/conv1/weight"]
    dims = {
        "n_mels": conv1.shape[1],
        "n_audio_ctx": ct2["encoder/position_encodings/encodings"].shape[0],
        "n_audio_state": conv1.shape[0],
        "n_audio_head": int(ct2["encoder/num_heads"]),
        "n_audio_layer": n_audio_layer,
        "n_vocab": ct2["decoder/embeddings/weight"].shape[0],
        "n_text_ctx": ct2["decoder/position_encodings/encodings"].shape[0],
        "n_text_state": ct2["decoder/embeddings/weight"].shape[1],
        "n_text_head": int(ct2["decoder/num_heads"]),
        "n_text_layer": n_text_layer,
    }
    state = {name: tensor.to(torch.float16).contiguous() for name, tensor in sd.items()}
    return {"dims": dims, "model_state_dict": state}


def load_config(folder: Path) -> dict:
    path = Path(folder) / "config.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
