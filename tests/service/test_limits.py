"""Body size limit (413 from Content-Length and from a counted chunked body) and bad input the other tests miss."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from error_body import assert_error, assert_error_body
from fastapi.testclient import TestClient

from xalign.service.settings import Settings

LIMIT = 4096


@pytest.fixture(scope="module")
def settings(tiny_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        store=tiny_store,
        threads=1,
        max_inputs_per_request=64,
        max_chars_per_input=1000,
        max_body_bytes=LIMIT,
        poll_interval_s=0,
        data_dir=tmp_path_factory.mktemp("limits-data"),
    )


def _chunks(body: bytes, size: int = 512) -> Iterator[bytes]:
    # A generator makes the client send Transfer-Encoding: chunked, with no Content-Length.
    for start in range(0, len(body), size):
        yield body[start : start + size]


def _body(n_texts: int) -> bytes:
    return json.dumps({"input": ["x" * 100] * n_texts}).encode()


def test_body_over_the_limit_by_content_length(client: TestClient) -> None:
    body = _body(50)
    assert len(body) > LIMIT
    response = client.post("/v1/embeddings", content=body, headers={"content-type": "application/json"})
    message = assert_error(response, 413, "payload_too_large", code="body_too_large")
    assert str(LIMIT) in message
    assert response.headers["x-request-id"]
    assert client.get("/health").status_code == 200


def test_chunked_body_is_counted(client: TestClient) -> None:
    big, small = _body(50), _body(3)
    headers = {"content-type": "application/json"}
    chunked = client.post("/v1/embeddings", content=_chunks(big), headers=headers)
    assert_error(chunked, 413, "payload_too_large", code="body_too_large")
    response = client.post("/v1/embeddings", content=_chunks(small), headers=headers)
    assert response.status_code == 200, response.text
    plain = client.post("/v1/embeddings", content=small, headers=headers)
    assert response.json()["data"] == plain.json()["data"]


def test_invalid_content_length_is_a_400(client: TestClient) -> None:
    response = client.post(
        "/v1/embeddings", content=b'{"input": "x"}', headers={"content-type": "application/json", "content-length": "x"}
    )
    assert_error(response, 400, "invalid_request_error", code="invalid_content_length")


@pytest.mark.parametrize(
    ("payload", "status", "error_type", "param", "code"),
    [
        ({"input": ["ok", 1]}, 422, "validation_error", None, "validation_failed"),
        ({"input": ["ok", None]}, 422, "validation_error", None, "validation_failed"),
        ({"input": [["a"]]}, 422, "validation_error", None, "validation_failed"),
        ({"input": None}, 422, "validation_error", None, "validation_failed"),
        ({"input": True}, 422, "validation_error", None, "validation_failed"),
        ({"input": "x", "model": 7}, 422, "validation_error", "model", "validation_failed"),
        ({"input": "x", "model": ""}, 422, "validation_error", "model", "invalid_name"),
        ({"input": "x", "dimensions": "many"}, 422, "validation_error", "dimensions", "validation_failed"),
        ({"input": "x", "dimensions": -3}, 422, "validation_error", "dimensions", "validation_failed"),
        ({"input": "x", "encoding_format": None}, 422, "validation_error", "encoding_format", "validation_failed"),
        ({"input": ["\t\n "]}, 400, "invalid_request_error", "input", "empty_input"),
        ({"input": ["y"] * 65}, 413, "payload_too_large", "input", "too_many_inputs"),
        ({"input": "y" * 1001}, 413, "payload_too_large", "input", "input_too_long"),
        ([{"input": "x"}], 422, "validation_error", None, "validation_failed"),
        ("just a string", 422, "validation_error", None, "validation_failed"),
    ],
)
def test_more_bad_requests(
    client: TestClient, payload: object, status: int, error_type: str, *, param: str | None, code: str
) -> None:
    assert_error(client.post("/v1/embeddings", json=payload), status, error_type, param, code=code)


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"", "application/json"),
        (b"null", "application/json"),
        (b'{"input": "x"', "application/json"),
        (b'{"input": "x"}', "text/plain"),
        (b"\x00\x01\x02", "application/octet-stream"),
        (b'{"input": "\xc3\x28"}', "application/json; charset=utf-8"),
    ],
)
def test_malformed_bodies_get_a_4xx(client: TestClient, content: bytes, content_type: str) -> None:
    response = client.post("/v1/embeddings", content=content, headers={"content-type": content_type})
    assert 400 <= response.status_code < 500, response.text
    assert_error_body(response.json())
    assert client.get("/health").status_code == 200


def test_the_loaded_version_named_is_served_without_a_store_look_up(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A version is immutable, so naming the loaded one needs no store read (a thread hop and disk on every
    # request of a client that pins versions); any other version still goes to the store for its 404.
    store = client.app.state.registry.store  # type: ignore[attr-defined]
    looked_up: list[object] = []
    real_resolve = store.resolve
    monkeypatch.setattr(store, "resolve", lambda ref: looked_up.append(ref) or real_resolve(ref))
    assert client.post("/v1/embeddings", json={"input": "x", "model": "tiny:1"}).status_code == 200
    assert looked_up == []
    missing = client.post("/v1/embeddings", json={"input": "x", "model": "tiny:9"})
    assert_error(missing, 404, "not_found_error", "model", code="model_version_not_found")
    assert [str(ref) for ref in looked_up] == ["tiny:9"]


def test_unknown_or_malformed_model_reference(client: TestClient) -> None:
    unknown = client.post("/v1/embeddings", json={"input": "x", "model": "nope@stable"})
    assert_error(unknown, 404, "not_found_error", "model", code="model_not_found")
    malformed = client.post("/v1/embeddings", json={"input": "x", "model": "tiny:0"})
    assert_error(malformed, 422, "validation_error", "model", code="invalid_name")
    # A query parameter the route does not declare is ignored; the body's model decides.
    assert_error(
        client.post("/v1/embeddings?model=tiny", json={"input": "x", "model": "tiny:9"}),
        404,
        "not_found_error",
        code="model_version_not_found",
    )
