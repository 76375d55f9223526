"""API keys: off by default; read and admin scopes; Bearer and X-API-Key; 401 and 403 in the one error body."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.app import create_app
from service.auth import AdminAccess
from service.errors import install_error_handlers
from service.settings import Settings

from .conftest import assert_error

READ, ADMIN = "read-key-1", "admin-key-1"
READ_ROUTES = [("POST", "/v1/embeddings", {"input": "hello"}), ("GET", "/v1/models", None), ("GET", "/metrics", None)]


@pytest.fixture(scope="module")
def keyed(tiny_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = Settings(
        store=tiny_store,
        threads=1,
        api_keys=[READ],
        admin_api_keys=[ADMIN],
        poll_interval_s=0,
        data_dir=tmp_path_factory.mktemp("auth-data"),
    )
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
    assert_error(_call(keyed, method, path, body, {}), 401, "authentication_error")
    assert_error(_call(keyed, method, path, body, {"Authorization": "Bearer nope"}), 401, "authentication_error")
    assert_error(_call(keyed, method, path, body, {"X-API-Key": "nope"}), 401, "authentication_error")
    # A scheme other than Bearer carries no key.
    assert_error(_call(keyed, method, path, body, {"Authorization": f"Basic {READ}"}), 401, "authentication_error")
    for headers in ({"Authorization": f"Bearer {READ}"}, {"X-API-Key": READ}, {"Authorization": f"bearer {ADMIN}"}):
        response = keyed.request(method, path, json=body, headers=headers)
        assert response.status_code == 200, (headers, response.text)


def test_probes_stay_open(keyed: TestClient) -> None:
    assert keyed.get("/health").status_code == 200
    assert keyed.get("/ready").status_code == 200


def test_admin_route_scopes(keyed: TestClient) -> None:
    path = "/v1/models/tiny/reload"
    assert_error(keyed.post(path), 401, "authentication_error")
    assert_error(keyed.post(path, headers={"X-API-Key": "nope"}), 401, "authentication_error")
    assert_error(keyed.post(path, headers={"Authorization": f"Bearer {READ}"}), 403, "permission_error")
    response = keyed.post(path, headers={"Authorization": f"Bearer {ADMIN}"})
    assert response.status_code == 200, response.text


def test_require_admin_alone(tiny_store: Path) -> None:
    """The admin dependency on a minimal app, independent of what the real admin routes do."""
    app = FastAPI()
    app.state.settings = Settings(store=tiny_store, api_keys=[READ], admin_api_keys=[ADMIN])
    install_error_handlers(app)

    @app.post("/admin")
    async def admin(_: AdminAccess) -> dict[str, str]:
        return {"ok": "yes"}

    with TestClient(app) as client:
        assert_error(client.post("/admin"), 401, "authentication_error")
        assert_error(client.post("/admin", headers={"X-API-Key": READ}), 403, "permission_error")
        assert client.post("/admin", headers={"X-API-Key": ADMIN}).json() == {"ok": "yes"}
