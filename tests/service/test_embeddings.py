"""``/v1/embeddings`` against the PyTorch model it was exported from, and its request checks."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest
import torch
from error_body import assert_error
from fastapi.testclient import TestClient
from tiny_models import MAX_LEN, build_tokenizer

from xalign.export.dual_encoder import load_dual_encoder
from xalign.modelstore import Manifest
from xalign.service.routes.embeddings import EmbeddingResponse

TEXTS = ["hello world", "the cat sat on the mat", "a", "dogs run far, far away!", "hello"]


def _vectors(body: dict[str, object]) -> np.ndarray:
    data = body["data"]
    assert isinstance(data, list)
    assert [d["index"] for d in data] == list(range(len(data)))
    return np.array([d["embedding"] for d in data], dtype=np.float32)


def _torch_reference(model_dir: Path, texts: list[str]) -> np.ndarray:
    """The PyTorch model on the same texts, prefix applied, one at a time."""
    module = load_dual_encoder(model_dir)
    tokenizer = build_tokenizer()
    tokenizer.enable_truncation(MAX_LEN)
    rows = []
    for text in texts:
        ids = torch.tensor([tokenizer.encode("query: " + text).ids])
        with torch.inference_mode():
            rows.append(module(ids, torch.ones_like(ids)).numpy()[0])
    return np.stack(rows)


def test_list_input_matches_pytorch_and_single_requests(client: TestClient, tiny_model_dir: Path) -> None:
    response = client.post("/v1/embeddings", json={"model": "tiny", "input": TEXTS})
    assert response.status_code == 200, response.text
    body = response.json()
    batch = _vectors(body)
    assert batch.shape == (len(TEXTS), 32)
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(batch, _torch_reference(tiny_model_dir, TEXTS), atol=1e-5)
    singles = np.stack([_vectors(client.post("/v1/embeddings", json={"input": t}).json())[0] for t in TEXTS])
    np.testing.assert_allclose(batch, singles, atol=1e-5)
    assert body["object"] == "list"
    assert body["model"] == "tiny:1"
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] > len(TEXTS)


def test_base64_decodes_to_the_float_vectors(client: TestClient) -> None:
    floats = _vectors(client.post("/v1/embeddings", json={"input": ["hello world"]}).json())
    response = client.post("/v1/embeddings", json={"input": ["hello world"], "encoding_format": "base64"})
    encoded = response.json()["data"][0]["embedding"]
    decoded = np.frombuffer(base64.b64decode(encoded), dtype="<f4")
    np.testing.assert_array_equal(decoded, floats[0])


@pytest.mark.parametrize("encoding_format", ["float", "base64"])
def test_the_body_written_from_the_vectors_is_the_declared_response(client: TestClient, encoding_format: str) -> None:
    # The route writes its JSON itself (no response-model pass): it must still parse as the schema says, exactly.
    response = client.post("/v1/embeddings", json={"input": TEXTS[:2], "encoding_format": encoding_format})
    assert response.headers["content-type"] == "application/json"
    parsed = EmbeddingResponse.model_validate_json(response.content, strict=True)
    assert parsed.model_dump(mode="json") == response.json()
    assert [type(d.embedding) for d in parsed.data] == [list if encoding_format == "float" else str] * 2


def test_model_references(client: TestClient) -> None:
    for model in ("tiny", "tiny:1", "tiny@latest"):
        assert client.post("/v1/embeddings", json={"model": model, "input": "x"}).status_code == 200
    assert_error(client.post("/v1/embeddings", json={"model": "tiny:2", "input": "x"}), 404, "not_found_error", "model")
    assert_error(client.post("/v1/embeddings", json={"model": "other", "input": "x"}), 404, "not_found_error", "model")
    assert_error(client.post("/v1/embeddings", json={"model": "../x", "input": "x"}), 422, "validation_error")


@pytest.mark.parametrize(
    ("payload", "status", "error_type"),
    [
        ({"input": []}, 400, "invalid_request_error"),
        ({"input": ["ok", ""]}, 400, "invalid_request_error"),
        ({"input": "   "}, 400, "invalid_request_error"),
        ({"input": [1, 2, 3]}, 400, "invalid_request_error"),
        ({"input": [[1, 2], [3]]}, 400, "invalid_request_error"),
        ({"input": ["a"] * 9}, 413, "payload_too_large"),
        ({"input": "x" * 201}, 413, "payload_too_large"),
        ({"input": "x", "dimensions": 8}, 422, "validation_error"),
        ({"input": "x", "dimensions": 0}, 422, "validation_error"),
        ({"input": "x", "encoding_format": "int8"}, 422, "validation_error"),
        ({"input": {"text": "x"}}, 422, "validation_error"),
        ({}, 422, "validation_error"),
    ],
)
def test_bad_requests_get_one_error_body(
    client: TestClient, payload: dict[str, object], status: int, error_type: str
) -> None:
    assert_error(client.post("/v1/embeddings", json=payload), status, error_type)
    assert client.get("/health").status_code == 200


def test_invalid_json_and_utf8(client: TestClient) -> None:
    headers = {"content-type": "application/json"}
    assert_error(client.post("/v1/embeddings", content=b"{not json", headers=headers), 400, "invalid_request_error")
    assert_error(
        client.post("/v1/embeddings", content=b'{"input": "\xff\xfe"}', headers=headers), 400, "invalid_request_error"
    )


def test_unknown_route_and_method(client: TestClient) -> None:
    assert_error(client.get("/v1/nothing"), 404, "not_found_error")
    assert_error(client.get("/v1/embeddings"), 405, "invalid_request_error")


def test_unexpected_errors_do_not_leak(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = client.app.state.registry  # type: ignore[attr-defined]
    encoder = registry.models["tiny"].encoder

    def broken(*_: object) -> None:
        raise RuntimeError("secret path /etc/xalign/key")

    monkeypatch.setattr(encoder, "run", broken)  # inference goes through the batcher
    message = assert_error(client.post("/v1/embeddings", json={"input": "x"}), 500, "internal_error")
    assert "secret" not in message


def test_models_health_ready(client: TestClient, tiny_manifest: Manifest) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json() == {"status": "ready", "models": ["tiny:1"], "missing": []}
    card = client.get("/v1/models").json()["data"][0]
    assert card["id"] == "tiny:1"
    assert card["dimension"] == tiny_manifest.embedding_dim
    assert card["provider"] == "cpu"
    assert card["family"] == "dual-encoder"
