"""The numpy MiniLM against sentence-transformers on the same weights, and nearest neighbours whose
answer is known: paraphrases that share no content word with what they should find."""

import numpy as np
import pytest

from reelscope.search.embed import DIMENSIONS, embed, model_dir

TEXTS = [
    "The cat sat by the kitchen window.",
    "Container ships are unloaded at the harbour before dawn.",
    "Hi",
    "Ein Hund läuft über die Straße und bellt, während es regnet. " * 30,  # over 256 tokens: truncated
]


def test_same_vectors_as_sentence_transformers():
    sentence_transformers = pytest.importorskip("sentence_transformers")
    reference = sentence_transformers.SentenceTransformer(str(model_dir()), device="cpu")
    expected = reference.encode(TEXTS, normalize_embeddings=True)
    got = embed(TEXTS)
    assert got.shape == (len(TEXTS), DIMENSIONS) and got.dtype == np.float32
    assert np.abs(got - expected).max() < 1e-5
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_padding_in_a_batch_changes_nothing():
    together = embed(TEXTS)
    for i, text in enumerate(TEXTS):
        assert np.abs(together[i] - embed([text])[0]).max() < 1e-5, TEXTS[i][:30]
    assert embed([]).shape == (0, DIMENSIONS)


def test_paraphrases_find_their_sentence():
    documents = ["The cat sat by the kitchen window.",
                 "Container ships are unloaded at the harbour before dawn.",
                 "Heavy rain is expected across the north tomorrow afternoon.",
                 "She scored the winning goal in the final minute of the match."]
    queries = {"a feline resting near the glass": 0, "cargo vessels emptied at the port early": 1,
               "weather forecast: storms on the way": 2, "football game decided at the last moment": 3}
    similarity = embed(list(queries)) @ embed(documents).T
    assert [int(row.argmax()) for row in similarity] == list(queries.values())
    assert (similarity.max(axis=1) > 0.3).all()
