"""A service whose store holds nothing loadable starts, says why, and is not ready."""

from __future__ import annotations

import shutil
from pathlib import Path

from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings

from .conftest import assert_error


def test_empty_store_is_not_ready(tmp_path: Path) -> None:
    with TestClient(create_app(Settings(store=tmp_path))) as client:
        assert client.get("/health").status_code == 200
        assert_error(client.get("/ready"), 503, "service_unavailable")
        assert_error(client.post("/v1/embeddings", json={"input": "x"}), 503, "service_unavailable")


def test_corrupt_version_is_refused_and_reported(tiny_store: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(tiny_store, store)
    model = store / "tiny" / "1" / "model.onnx"
    model.write_bytes(model.read_bytes()[:-1] + b"\x00")
    with TestClient(create_app(Settings(store=store))) as client:
        assert_error(client.get("/ready"), 503, "service_unavailable")
        errors = client.get("/v1/models").json()["errors"]
        assert "model.onnx" in errors["tiny"]
