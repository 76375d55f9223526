"""``truncate`` on ``/v1/embeddings``: cut to the model's token limit (the default), or 413 before any inference."""

from __future__ import annotations

import numpy as np
from error_body import assert_error
from fastapi.testclient import TestClient
from tiny_models import MAX_LEN, build_tokenizer

# 100 one-letter words: under the 200 characters a text may have, over the 64 tokens the tiny model takes.
LONG = " ".join("abcdefghij" * 10)
SHORT = "hello world"


def _untruncated_tokens(text: str) -> int:
    return len(build_tokenizer().encode("query: " + text).ids)


def _batcher_embedded(client: TestClient) -> int:
    return int(client.app.state.registry.models["tiny"].batcher.embedded)  # type: ignore[attr-defined]


def test_false_refuses_a_long_input_before_inference(client: TestClient) -> None:
    before = _batcher_embedded(client)
    response = client.post("/v1/embeddings", json={"input": [SHORT, LONG], "truncate": False})
    message = assert_error(response, 413, "payload_too_large", "input[1]", code="input_too_long")
    assert f"has {_untruncated_tokens(LONG)} tokens" in message and str(MAX_LEN) in message
    assert _batcher_embedded(client) == before  # nothing was embedded, not even the short text


def test_true_embeds_the_first_tokens_and_counts_them(client: TestClient) -> None:
    cut = client.post("/v1/embeddings", json={"input": [SHORT, LONG]})
    assert cut.status_code == 200, cut.text
    short_tokens = _untruncated_tokens(SHORT)
    assert cut.json()["usage"] == {"prompt_tokens": short_tokens + MAX_LEN, "total_tokens": short_tokens + MAX_LEN}
    # The cut text is the text of its first 64 tokens: a shorter tail past them changes nothing.
    shorter = client.post("/v1/embeddings", json={"input": [LONG[:150]], "truncate": True}).json()
    np.testing.assert_allclose(shorter["data"][0]["embedding"], cut.json()["data"][1]["embedding"], atol=1e-6)


def test_false_embeds_inputs_within_the_limit_as_true_does(client: TestClient) -> None:
    strict = client.post("/v1/embeddings", json={"input": [SHORT, "abc"], "truncate": False}).json()
    default = client.post("/v1/embeddings", json={"input": [SHORT, "abc"]}).json()
    assert strict["usage"] == default["usage"]
    for a, b in zip(strict["data"], default["data"], strict=True):
        np.testing.assert_allclose(a["embedding"], b["embedding"], atol=1e-6)


def test_a_text_of_exactly_the_limit_is_not_refused(client: TestClient) -> None:
    # 64 tokens: [CLS], "query: " as 6 tokens, 56 letters, [SEP].
    exact = " ".join("abcdefgh" * 7)
    assert _untruncated_tokens(exact) == MAX_LEN
    response = client.post("/v1/embeddings", json={"input": exact, "truncate": False})
    assert response.status_code == 200, response.text
    assert response.json()["usage"]["prompt_tokens"] == MAX_LEN


def test_truncate_must_be_a_boolean(client: TestClient) -> None:
    assert_error(
        client.post("/v1/embeddings", json={"input": "x", "truncate": "maybe"}), 422, "validation_error", "truncate"
    )
