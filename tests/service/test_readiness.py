"""Readiness: ready when every model this replica serves has a served version; else 503 naming the missing.

"Every model it serves" is the configured ``models``, or every model found in the store at start. A model
whose newer version failed to load keeps serving its old one, so it counts as ready.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from error_body import assert_error
from fastapi.testclient import TestClient

from xalign.service.app import create_app
from xalign.service.settings import Settings


def _corrupt(version_dir: Path) -> None:
    model = version_dir / "model.onnx"
    model.write_bytes(model.read_bytes()[:-1] + b"\x00")


def _settings(store: Path, tmp_path: Path, **extra: object) -> Settings:
    return Settings(store=store, data_dir=tmp_path / "data", threads=1, poll_interval_s=0, **extra)  # type: ignore[arg-type]


def test_empty_store_is_not_ready(tmp_path: Path) -> None:
    with TestClient(create_app(Settings(store=tmp_path))) as client:
        assert client.get("/health").status_code == 200
        assert_error(client.get("/ready"), 503, "service_unavailable")
        embedded = client.post("/v1/embeddings", json={"input": "x"})
        assert_error(embedded, 503, "service_unavailable", code="no_model_loaded")


def test_corrupt_version_is_refused_and_reported(tiny_store: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(tiny_store, store)
    _corrupt(store / "tiny" / "1")
    with TestClient(create_app(_settings(store, tmp_path))) as client:
        assert_error(client.get("/ready"), 503, "service_unavailable")
        errors = client.get("/v1/models").json()["errors"]
        assert "model.onnx" in errors["tiny"]


def test_ready_when_every_model_of_the_store_is_served(client: TestClient) -> None:
    assert client.get("/ready").json() == {"status": "ready", "models": ["tiny:1"], "missing": []}


def test_one_model_that_never_loaded_makes_the_replica_not_ready(tiny_store: Path, tmp_path: Path) -> None:
    """The README says every model; the code once said at least one: ``tiny`` serving was enough."""
    store = tmp_path / "store"
    shutil.copytree(tiny_store, store)
    shutil.copytree(store / "tiny", store / "broken")
    _corrupt(store / "broken" / "1")
    with TestClient(create_app(_settings(store, tmp_path))) as client:
        assert client.post("/v1/embeddings", json={"input": "x", "model": "tiny"}).status_code == 200
        message = assert_error(client.get("/ready"), 503, "service_unavailable")
        assert "missing: broken" in message and "tiny" not in message.split("missing:")[1]


def test_a_configured_model_missing_from_the_store_is_named(tiny_store: Path, tmp_path: Path) -> None:
    with TestClient(create_app(_settings(tiny_store, tmp_path, models=["tiny", "ghost@staging"]))) as client:
        message = assert_error(client.get("/ready"), 503, "service_unavailable")
        assert "missing: ghost" in message


def test_a_failed_newer_version_leaves_the_replica_ready(tiny_store: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(tiny_store, store)
    (store / "tiny" / "aliases.json").unlink(missing_ok=True)  # serve the latest version
    with TestClient(create_app(_settings(store, tmp_path))) as client:
        assert client.get("/ready").status_code == 200
        shutil.copytree(store / "tiny" / "1", store / "tiny" / ".tmp-2")
        _corrupt(store / "tiny" / ".tmp-2")
        (store / "tiny" / ".tmp-2").rename(store / "tiny" / "2")
        assert client.post("/v1/models/tiny/reload").status_code == 409
        assert "tiny" in client.get("/v1/models").json()["errors"]
        assert client.get("/ready").json() == {"status": "ready", "models": ["tiny:1"], "missing": []}
