"""CORS: no headers at all by default; with ``cors_allow_origins`` a browser on an allowed origin gets them (preflight,
simple requests, error answers too), a foreign origin does not."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from error_body import assert_error
from fastapi.testclient import TestClient

from xalign.service.app import create_app
from xalign.service.settings import Settings

ALLOWED, FOREIGN = "https://app.example.com", "https://evil.example.net"
PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type, x-request-id",
}


def _client(tmp_path: Path, **extra: object) -> TestClient:
    """An app over an empty store: CORS is decided before any route, so no model needs to load."""
    settings = Settings(store=tmp_path / "store", data_dir=tmp_path / "data", poll_interval_s=0, **extra)  # type: ignore[arg-type]
    return TestClient(create_app(settings), raise_server_exceptions=False)


def _cors_headers(response: object) -> dict[str, str]:
    headers = getattr(response, "headers", {})
    return {k.lower(): v for k, v in headers.items() if k.lower().startswith("access-control-")}


@pytest.fixture
def allowed(tmp_path: Path) -> Iterator[TestClient]:
    with _client(tmp_path, cors_allow_origins=[ALLOWED], api_keys=["read-key"]) as client:
        yield client


def test_off_by_default(tmp_path: Path) -> None:
    with _client(tmp_path) as client:
        simple = client.get("/health", headers={"Origin": ALLOWED})
        assert simple.status_code == 200 and _cors_headers(simple) == {}
        preflight = client.options("/v1/embeddings", headers={"Origin": ALLOWED, **PREFLIGHT})
        assert _cors_headers(preflight) == {}
        assert_error(preflight, 405, "invalid_request_error", code="method_not_allowed")


def test_preflight_from_an_allowed_origin(allowed: TestClient) -> None:
    # No key: a browser sends no Authorization on a preflight, so it is answered before authentication.
    response = allowed.options("/v1/embeddings", headers={"Origin": ALLOWED, **PREFLIGHT})
    assert response.status_code == 200, response.text
    headers = _cors_headers(response)
    assert headers["access-control-allow-origin"] == ALLOWED
    assert "POST" in headers["access-control-allow-methods"]
    allowed_headers = headers["access-control-allow-headers"].lower()
    assert {"authorization", "content-type", "x-request-id", "x-api-key"} <= set(allowed_headers.split(", "))


def test_simple_requests_and_errors_from_an_allowed_origin(allowed: TestClient) -> None:
    ok = allowed.get("/v1/models", headers={"Origin": ALLOWED, "Authorization": "Bearer read-key"})
    assert ok.status_code == 200, ok.text
    headers = _cors_headers(ok)
    assert headers["access-control-allow-origin"] == ALLOWED
    assert set(headers["access-control-expose-headers"].lower().split(", ")) == {"x-request-id", "retry-after"}
    # A refusal is readable by the page too (CORS is the outermost layer).
    refused = allowed.get("/v1/models", headers={"Origin": ALLOWED})
    assert_error(refused, 401, "authentication_error", code="missing_api_key")
    assert _cors_headers(refused)["access-control-allow-origin"] == ALLOWED


def test_a_foreign_origin_gets_no_cors_headers(allowed: TestClient) -> None:
    simple = allowed.get("/health", headers={"Origin": FOREIGN})
    assert simple.status_code == 200 and "access-control-allow-origin" not in _cors_headers(simple)
    preflight = allowed.options("/v1/embeddings", headers={"Origin": FOREIGN, **PREFLIGHT})
    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in _cors_headers(preflight)
