"""``POST /v1/rerank``: documents sorted by the cosine of their embeddings to the query's; top_n, documents."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from error_body import assert_error
from fastapi.testclient import TestClient

QUERY = "the cat sat on the mat"
DOCUMENTS = ["a dog ran far", "the cat sat on a mat", "xyz 123", "cats sit on mats", "hello world"]


def _cosines(client: TestClient) -> tuple[np.ndarray, int]:
    """Cosines of the documents' /v1/embeddings vectors to the query's, and the tokens of all of them."""
    body = client.post("/v1/embeddings", json={"input": [QUERY, *DOCUMENTS]}).json()
    vectors = np.array([d["embedding"] for d in body["data"]])
    scores = vectors[1:] @ vectors[0] / (np.linalg.norm(vectors[1:], axis=1) * np.linalg.norm(vectors[0]))
    return scores, int(body["usage"]["prompt_tokens"])


def _rerank(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/rerank", json={"query": QUERY, "documents": DOCUMENTS, **body})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_order_and_scores_are_the_sorted_cosines(client: TestClient) -> None:
    body = _rerank(client)
    assert (body["object"], body["model"]) == ("rerank", "tiny:1")
    scores, tokens = _cosines(client)
    results = body["results"]
    assert [r["index"] for r in results] == sorted(range(len(DOCUMENTS)), key=lambda i: -scores[i])
    np.testing.assert_allclose([r["relevance_score"] for r in results], np.sort(scores)[::-1], atol=1e-5)
    assert all(r["document"] is None for r in results)
    assert body["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}


def test_top_n_cuts_and_return_documents_echoes_them(client: TestClient) -> None:
    full = _rerank(client)["results"]
    top = _rerank(client, top_n=2, return_documents=True)["results"]
    assert [r["index"] for r in top] == [r["index"] for r in full[:2]]
    assert [r["document"] for r in top] == [DOCUMENTS[r["index"]] for r in top]
    assert len(_rerank(client, top_n=50)["results"]) == len(DOCUMENTS)


def test_documents_are_bounded_like_embedding_inputs(client: TestClient) -> None:
    # The service fixture allows 8 texts per request; the query comes on top of 8 documents.
    eight = client.post("/v1/rerank", json={"query": "q", "documents": ["d"] * 8})
    assert eight.status_code == 200 and len(eight.json()["results"]) == 8
    nine = client.post("/v1/rerank", json={"query": "q", "documents": ["d"] * 9})
    assert_error(nine, 413, "payload_too_large", "documents", code="too_many_inputs")


@pytest.mark.parametrize(
    ("body", "status", "error_type", "param"),
    [
        ({"query": "q", "documents": []}, 400, "invalid_request_error", "documents"),
        ({"query": " ", "documents": ["d"]}, 400, "invalid_request_error", "query"),
        ({"query": "q", "documents": ["d", ""]}, 400, "invalid_request_error", "documents"),
        ({"query": "x" * 201, "documents": ["d"]}, 413, "payload_too_large", "query"),
        ({"query": "q", "documents": ["d"], "top_n": 0}, 422, "validation_error", "top_n"),
        ({"query": "q", "documents": ["d"], "input_type": "query"}, 422, "validation_error", "input_type"),
        ({"query": "q", "documents": ["d"], "model": "absent"}, 404, "not_found_error", "model"),
    ],
)
def test_bad_requests(client: TestClient, body: dict[str, Any], status: int, error_type: str, param: str) -> None:
    assert_error(client.post("/v1/rerank", json=body), status, error_type, param)
