"""``/metrics`` per route template and status, request ids, and JSON log lines that carry them."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from xalign.service.log_config import json_handler


def _samples(client: TestClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def _count(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], route: str, method: str, status: str) -> float:
    labels = frozenset({"route": route, "method": method, "status": status}.items())
    return samples.get(("xalign_requests_total", labels), 0.0)


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """Every service log record of the test, as the JSON lines ``xalign-serve`` writes."""
    stream = io.StringIO()
    handler = json_handler(stream)
    logger = logging.getLogger("xalign")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def test_requests_are_counted_by_route_template(client: TestClient) -> None:
    before = _samples(client)
    assert client.post("/v1/embeddings", json={"input": "hello"}).status_code == 200
    assert client.post("/v1/embeddings", json={"input": ""}).status_code == 400
    client.post("/v1/models/some-unknown-model/reload")
    for path in ("/nothing/1", "/nothing/2"):
        assert client.get(path).status_code == 404
    after = _samples(client)
    assert _count(after, "/v1/embeddings", "POST", "200") == _count(before, "/v1/embeddings", "POST", "200") + 1
    assert _count(after, "/v1/embeddings", "POST", "400") == _count(before, "/v1/embeddings", "POST", "400") + 1
    assert _count(after, "unmatched", "GET", "404") == _count(before, "unmatched", "GET", "404") + 2
    routes = {dict(labels)["route"] for name, labels in after if name == "xalign_requests_total"}
    # Templates, never raw paths: the label set stays bounded whatever clients send.
    assert "/v1/models/{name}/reload" in routes
    assert not any("some-unknown-model" in r or "/nothing" in r for r in routes)
    latency = ("xalign_request_seconds_count", frozenset({"route": "/v1/embeddings", "method": "POST"}.items()))
    assert after[latency] >= 2


def test_engine_metrics_are_exported(client: TestClient) -> None:
    client.post("/v1/embeddings", json={"input": ["a b c", "d"]})
    names = {name for name, _ in _samples(client)}
    assert {"xalign_batch_texts_count", "xalign_inference_seconds_count", "xalign_model_version"} <= names


def test_request_id_is_generated_or_echoed(client: TestClient) -> None:
    generated = client.get("/health").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    assert client.get("/health").headers["x-request-id"] != generated
    assert client.get("/health", headers={"X-Request-Id": "abc-123.x:y"}).headers["x-request-id"] == "abc-123.x:y"
    for insane in ("has space", "x" * 200, "semi;colon", ""):
        echoed = client.get("/health", headers={"X-Request-Id": insane}).headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", echoed), insane
    assert client.get("/v1/nothing").headers["x-request-id"]


def test_access_log_is_one_json_line_per_request(client: TestClient, log_lines: io.StringIO) -> None:
    client.post("/v1/embeddings", json={"input": "hello"}, headers={"X-Request-Id": "req-42"})
    entries = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    access = [e for e in entries if e["logger"] == "xalign.access" and e["request_id"] == "req-42"]
    assert len(access) == 1
    entry = access[0]
    assert entry["method"] == "POST" and entry["route"] == "/v1/embeddings" and entry["status"] == 200
    assert entry["level"] == "info" and isinstance(entry["duration_ms"], float) and entry["time"]


def test_unexpected_error_is_logged_with_the_request_id(
    client: TestClient, log_lines: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    encoder = client.app.state.registry.models["tiny"].encoder  # type: ignore[attr-defined]

    def broken(*_: object) -> None:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(encoder, "run", broken)
    response = client.post("/v1/embeddings", json={"input": "x"}, headers={"X-Request-Id": "boom-1"})
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "boom-1"
    assert "secret" not in response.text
    entries = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    errors = [e for e in entries if e["level"] == "error" and e["request_id"] == "boom-1"]
    assert errors and "secret detail" in errors[0]["exception"]
    access = [e for e in entries if e["logger"] == "xalign.access" and e["request_id"] == "boom-1"]
    assert access[0]["status"] == 500
