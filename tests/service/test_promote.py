"""``POST /v1/models/{name}/promote`` and ``/rollback`` over a real store copy: the alias moves in the store (through
the release gate for production), the service reloads at once and the answer says what is served."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from error_body import assert_error
from fastapi.testclient import TestClient
from store_copies import add_version, copy_store, set_evaluation, tatoeba

from xalign.modelstore import ModelStore
from xalign.service.app import create_app
from xalign.service.settings import Settings

READ, ADMIN = "read-key", "admin-key"


@pytest.fixture
def store(tiny_store: Path, tmp_path: Path) -> Path:
    """tiny 1 (production, Tatoeba 80), 2 (Tatoeba 85: passes the gate), 3 (Tatoeba 70: fails it)."""
    store = copy_store(tiny_store, tmp_path)
    set_evaluation(store, 1, tatoeba(80.0))
    add_version(store, 2, tatoeba(85.0))
    add_version(store, 3, tatoeba(70.0))
    ModelStore(store).promote("tiny", 1, actor="test set-up")
    return store


def _client(store: Path, **keys: Any) -> TestClient:
    settings = Settings(store=store, threads=1, poll_interval_s=0, data_dir=store.parent / "data", **keys)
    return TestClient(create_app(settings), raise_server_exceptions=False)


@pytest.fixture
def client(store: Path) -> Iterator[TestClient]:
    with _client(store) as client:
        yield client


def _served(client: TestClient) -> int:
    card = client.get("/v1/models/tiny")
    assert card.status_code == 200, card.text
    return int(card.json()["version"])


def test_promote_serves_the_new_version_and_rollback_the_old(client: TestClient, store: Path) -> None:
    assert _served(client) == 1
    promoted = client.post("/v1/models/tiny/promote", json={"version": 2})
    assert promoted.status_code == 200, promoted.text
    assert promoted.json() == {"name": "tiny", "alias": "production", "previous": 1, "version": 2, "served": 2}
    assert _served(client) == 2
    assert client.post("/v1/embeddings", json={"input": "hello"}).json()["model"] == "tiny:2"
    last = ModelStore(store).history("tiny")[-1]
    assert (last.action, last.from_version, last.to_version, last.actor) == ("promote", 1, 2, "api")
    assert last.gate == "passed"

    rolled = client.post("/v1/models/tiny/rollback", json={})
    assert rolled.status_code == 200, rolled.text
    assert rolled.json() == {"name": "tiny", "alias": "production", "previous": 2, "version": 1, "served": 1}
    assert _served(client) == 1
    assert ModelStore(store).aliases("tiny") == {"production": 1}
    # The stack is back to one version: nothing left to roll back to.
    nothing = client.post("/v1/models/tiny/rollback", json={"alias": "production"})
    assert_error(nothing, 409, "conflict_error", "alias", code="nothing_to_roll_back")


def test_the_release_gate_refuses_a_worse_version(client: TestClient, store: Path) -> None:
    refused = client.post("/v1/models/tiny/promote", json={"version": 3, "alias": "production"})
    message = assert_error(refused, 409, "conflict_error", "version", code="release_gate_refused")
    assert "tiny:3 is not promoted" in message and "tatoeba" in message
    assert ModelStore(store).aliases("tiny") == {"production": 1}
    assert _served(client) == 1


def test_other_aliases_move_ungated_and_leave_production_served(client: TestClient, store: Path) -> None:
    staged = client.post("/v1/models/tiny/promote", json={"version": 3, "alias": "staging"})
    assert staged.status_code == 200, staged.text
    assert staged.json() == {"name": "tiny", "alias": "staging", "previous": None, "version": 3, "served": 1}
    assert ModelStore(store).aliases("tiny") == {"production": 1, "staging": 3}
    assert client.get("/v1/models/tiny").json()["aliases"] == {"production": 1, "staging": 3}


def test_unknown_and_invalid_targets(client: TestClient, store: Path) -> None:
    before = ModelStore(store).history("tiny")
    cases = [
        ("/v1/models/tiny/promote", {"version": 9}, 404, "version", "model_version_not_found"),
        ("/v1/models/tiny/promote", {"version": 9, "alias": "staging"}, 404, "version", "model_version_not_found"),
        ("/v1/models/ghost/promote", {"version": 1}, 404, "name", "model_not_found"),
        ("/v1/models/ghost/rollback", {}, 404, "name", "model_not_found"),
        ("/v1/models/tiny/rollback", {"alias": "staging"}, 404, "alias", "alias_not_found"),
        ("/v1/models/a..b/promote", {"version": 1}, 422, "name", "invalid_name"),
        ("/v1/models/tiny/promote", {"version": 2, "alias": "latest"}, 422, "alias", "invalid_name"),
        ("/v1/models/tiny/rollback", {"alias": "9lives"}, 422, "alias", "invalid_name"),
        ("/v1/models/tiny/promote", {"version": 0}, 422, "version", "validation_failed"),
        ("/v1/models/tiny/promote", {"version": 2, "force": True}, 422, "force", "validation_failed"),
    ]
    for path, body, status, param, code in cases:
        error_type = {404: "not_found_error", 422: "validation_error"}[status]
        assert_error(client.post(path, json=body), status, error_type, param, code=code)
    assert ModelStore(store).history("tiny") == before
    assert _served(client) == 1


def test_admin_scope(store: Path) -> None:
    with _client(store, api_keys=[READ], admin_api_keys=[ADMIN]) as client:
        for path, body in (("/v1/models/tiny/promote", {"version": 2}), ("/v1/models/tiny/rollback", {})):
            read = client.post(path, json=body, headers={"Authorization": f"Bearer {READ}"})
            assert_error(read, 403, "permission_error", code="insufficient_scope")
        assert ModelStore(store).aliases("tiny") == {"production": 1}
        admin = {"Authorization": f"Bearer {ADMIN}"}
        promoted = client.post("/v1/models/tiny/promote", json={"version": 2}, headers=admin)
        assert promoted.status_code == 200, promoted.text
        assert promoted.json()["served"] == 2
