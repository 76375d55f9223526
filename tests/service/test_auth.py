"""API keys: off by default; read and admin scopes; Bearer and X-API-Key; 401 and 403 in the one error body.

The route-by-route matrix (every route x key configuration x caller) is in ``test_scopes.py``; here are
the details it does not look at: header forms, messages, and what the service logs at start.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from error_body import assert_error
from fastapi.testclient import TestClient

from xalign.service.app import create_app
from xalign.service.settings import Settings

READ, ADMIN = "read-key-1", "admin-key-1"
READ_ROUTES = [("POST", "/v1/embeddings", {"input": "hello"}), ("GET", "/v1/models", None), ("GET", "/metrics", None)]


def _settings(store: Path, data: Path, read: list[str], admin: list[str]) -> Settings:
    return Settings(store=store, threads=1, api_keys=read, admin_api_keys=admin, poll_interval_s=0, data_dir=data)


@pytest.fixture(scope="module")
def keyed(tiny_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = _settings(tiny_store, tmp_path_factory.mktemp("auth-data"), [READ], [ADMIN])
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def _call(client: TestClient, method: str, path: str, body: object, headers: dict[str, str]) -> object:
    return client.request(method, path, json=body, headers=headers)


def test_keys_are_off_by_default(client: TestClient) -> None:
    assert Settings().api_keys == [] and Settings().admin_api_keys == []
    for method, path, body in READ_ROUTES:
        assert client.request(method, path, json=body).status_code == 200, path


@pytest.mark.parametrize(("method", "path", "body"), READ_ROUTES)
def test_read_routes_need_a_known_key(keyed: TestClient, method: str, path: str, body: object) -> None:
    refused = [
        ({}, "missing_api_key"),
        ({"Authorization": "Bearer nope"}, "invalid_api_key"),
        ({"X-API-Key": "nope"}, "invalid_api_key"),
        ({"Authorization": f"Basic {READ}"}, "missing_api_key"),  # a scheme other than Bearer carries no key
    ]
    for headers, code in refused:
        assert_error(_call(keyed, method, path, body, headers), 401, "authentication_error", code=code)
    for headers in ({"Authorization": f"Bearer {READ}"}, {"X-API-Key": READ}, {"Authorization": f"bearer {ADMIN}"}):
        response = keyed.request(method, path, json=body, headers=headers)
        assert response.status_code == 200, (headers, response.text)


def test_probes_stay_open(keyed: TestClient) -> None:
    assert keyed.get("/health").status_code == 200
    assert keyed.get("/ready").status_code == 200


def test_admin_route_scopes(keyed: TestClient) -> None:
    path = "/v1/models/tiny/reload"
    assert_error(keyed.post(path), 401, "authentication_error", code="missing_api_key")
    assert_error(keyed.post(path, headers={"X-API-Key": "nope"}), 401, "authentication_error", code="invalid_api_key")
    read = keyed.post(path, headers={"Authorization": f"Bearer {READ}"})
    message = assert_error(read, 403, "permission_error", code="insufficient_scope")
    assert "read scope" in message
    response = keyed.post(path, headers={"Authorization": f"Bearer {ADMIN}"})
    assert response.status_code == 200, response.text


def test_read_keys_alone_close_admin_routes_and_say_which_variable(
    tiny_store: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A defect once fixed: with read keys and no admin keys, admin routes were open to anyone."""
    data = tmp_path / "data"
    with caplog.at_level(logging.WARNING, logger="xalign.service"):
        app = create_app(_settings(tiny_store, data, [READ], []))
        with TestClient(app, raise_server_exceptions=False) as client:
            for headers in ({}, {"X-API-Key": READ}, {"Authorization": "Bearer nope"}):
                created = client.post("/v1/indexes", json={"name": "x", "model": "tiny"}, headers=headers)
                message = assert_error(created, 403, "permission_error", code="admin_routes_closed")
                assert "XALIGN_ADMIN_API_KEYS" in message
                assert_error(client.post("/v1/models/tiny/reload", headers=headers), 403, "permission_error")
                assert_error(client.delete("/v1/indexes/x", headers=headers), 403, "permission_error")
    assert not (data / "indexes" / "x").exists()
    said = [r.getMessage() for r in caplog.records if "XALIGN_ADMIN_API_KEYS" in r.getMessage()]
    assert len(said) == 1 and "403" in said[0], said


def test_admin_keys_alone_warn_that_read_routes_are_open(
    tiny_store: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="xalign.service"):
        app = create_app(_settings(tiny_store, tmp_path / "data", [], [ADMIN]))
        with TestClient(app, raise_server_exceptions=False) as client:
            assert client.post("/v1/embeddings", json={"input": "hello"}).status_code == 200
            assert_error(client.post("/v1/models/tiny/reload"), 401, "authentication_error")
    loud = [r for r in caplog.records if "answers ANYONE" in r.getMessage()]
    assert len(loud) == 1 and loud[0].levelno == logging.WARNING
    assert "XALIGN_API_KEYS" in loud[0].getMessage()


def test_full_configuration_logs_nothing_about_keys(
    tiny_store: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(_settings(tiny_store, tmp_path / "data", [READ], [ADMIN]))
    with caplog.at_level(logging.WARNING, logger="xalign.service"), TestClient(app):
        pass
    assert not [r for r in caplog.records if "API_KEYS" in r.getMessage()]


def test_keys_are_checked_before_the_body(keyed: TestClient) -> None:
    """A caller without a key learns nothing about the body a route expects: 401 comes before 422."""
    assert_error(keyed.post("/v1/indexes", json={"bogus": 1}), 401, "authentication_error")
    assert_error(keyed.post("/v1/embeddings", json={}), 401, "authentication_error")
