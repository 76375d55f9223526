"""``POST /v1/similarity``: cosines of pairs, equal to those of ``/v1/embeddings`` vectors; limits and usage."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from error_body import assert_error
from fastapi.testclient import TestClient

PAIRS = [["hello world", "hello world"], ["the cat sat", "a dog ran far"], ["abc", "xyz 123"]]


def _embed(client: TestClient, texts: list[str], **body: Any) -> tuple[np.ndarray, int]:
    response = client.post("/v1/embeddings", json={"input": texts, **body})
    assert response.status_code == 200, response.text
    data = response.json()
    return np.array([d["embedding"] for d in data["data"]]), int(data["usage"]["prompt_tokens"])


def test_similarity_is_the_cosine_of_the_embeddings(client: TestClient) -> None:
    response = client.post("/v1/similarity", json={"pairs": PAIRS})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["object"], body["model"]) == ("list", "tiny:1")
    assert [d["index"] for d in body["data"]] == [0, 1, 2]
    vectors, tokens = _embed(client, [text for pair in PAIRS for text in pair])
    left, right = vectors[0::2], vectors[1::2]
    expected = (left * right).sum(1) / (np.linalg.norm(left, axis=1) * np.linalg.norm(right, axis=1))
    scores = np.array([d["similarity"] for d in body["data"]])
    np.testing.assert_allclose(scores, expected, atol=1e-5)
    assert scores[0] == pytest.approx(1.0, abs=1e-5) and scores[1] < 0.999
    assert body["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}


def test_a_pair_counts_as_two_texts(client: TestClient) -> None:
    # The service fixture allows 8 texts per request: 4 pairs.
    assert client.post("/v1/similarity", json={"pairs": [["a", "b"]] * 4}).status_code == 200
    response = client.post("/v1/similarity", json={"pairs": [["a", "b"]] * 5})
    assert "at most 4 pairs" in assert_error(response, 413, "payload_too_large", "pairs", code="too_many_inputs")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"pairs": []}, (400, "invalid_request_error", "pairs", "pairs must not be empty")),
        ({"pairs": [["a", "b"], ["c", " "]]}, (400, "invalid_request_error", "pairs", "pairs[1][1] is empty")),
        ({"pairs": [["a", "x" * 201]]}, (413, "payload_too_large", "pairs", "pairs[0][1] is longer")),
        ({"pairs": [["a", "b", "c"]]}, (422, "validation_error", "pairs", "")),
        ({"pairs": [["a"]]}, (422, "validation_error", "pairs", "")),
        ({"pairs": [["a", "b"]], "input_type": "query"}, (422, "validation_error", "input_type", "defines no prefix")),
        ({"pairs": [["a", "b"]], "truncate": True}, (422, "validation_error", "truncate", "")),
        ({"pairs": [["a", "b"]], "model": "absent"}, (404, "not_found_error", "model", "")),
    ],
)
def test_bad_requests(client: TestClient, body: dict[str, Any], expected: tuple[int, str, str, str]) -> None:
    status, error_type, param, shown = expected
    assert shown in assert_error(client.post("/v1/similarity", json=body), status, error_type, param)
