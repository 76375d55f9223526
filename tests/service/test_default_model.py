"""The default model is chosen on purpose: ``default_model``, else the first served dual encoder.

The store holds the tiny dual encoder ``tiny`` and a tiny Backpack named ``a-backpack`` so that it sorts
first: before the fix every request without ``model`` got the Backpack.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from error_body import assert_error
from fastapi.testclient import TestClient
from pydantic import ValidationError
from tiny_backpack import build_backpack_dir, publish_tiny_backpack

from xalign.service.app import create_app
from xalign.service.settings import Settings

BACKPACK = "a-backpack"


@pytest.fixture(scope="module")
def backpack_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding only ``a-backpack`` version 1."""
    store = tmp_path_factory.mktemp("backpack-only") / "store"
    publish_tiny_backpack(build_backpack_dir(tmp_path_factory.mktemp("bp"), seed=0), store, name=BACKPACK)
    return store


@pytest.fixture(scope="module")
def mixed_store(tiny_store: Path, backpack_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("default-mixed") / "store"
    shutil.copytree(tiny_store, store)
    shutil.copytree(backpack_store / BACKPACK, store / BACKPACK)
    assert sorted(p.name for p in store.iterdir())[0] == BACKPACK
    return store


def _client(store: Path, tmp_path: Path, **extra: Any) -> TestClient:
    settings = Settings(store=store, data_dir=tmp_path / "data", threads=1, poll_interval_s=0, **extra)
    return TestClient(create_app(settings), raise_server_exceptions=False)


def _post(client: TestClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(path, json=body)
    assert response.status_code in (200, 201), response.text
    result: dict[str, Any] = response.json()
    return result


@pytest.fixture(scope="module")
def mixed(mixed_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with _client(mixed_store, tmp_path_factory.mktemp("default-data")) as client:
        yield client


def test_requests_without_model_get_the_dual_encoder(mixed: TestClient) -> None:
    assert {c["name"] for c in mixed.get("/v1/models").json()["data"]} == {"tiny", BACKPACK}
    assert _post(mixed, "/v1/embeddings", {"input": "hello"})["model"] == "tiny:1"
    assert _post(mixed, "/v1/indexes", {"name": "no-model"})["model"] == "tiny"
    mined = _post(mixed, "/v1/bitext/mine", {"src": {"texts": ["a cat"]}, "tgt": {"texts": ["eine katze"]}})
    assert mined["model"] == "tiny:1"


def test_senses_still_default_to_the_first_backpack(mixed: TestClient) -> None:
    assert _post(mixed, "/v1/senses", {"input": "the cat"})["model"] == f"{BACKPACK}:1"


def test_a_configured_default_wins(mixed_store: Path, tmp_path: Path) -> None:
    with _client(mixed_store, tmp_path, default_model=BACKPACK) as client:
        assert _post(client, "/v1/embeddings", {"input": "hello"})["model"] == f"{BACKPACK}:1"
        assert _post(client, "/v1/embeddings", {"input": "hello", "model": "tiny"})["model"] == "tiny:1"


def test_a_backpack_configured_first_is_still_not_the_default(mixed_store: Path, tmp_path: Path) -> None:
    with _client(mixed_store, tmp_path, models=[BACKPACK, "tiny"]) as client:
        assert _post(client, "/v1/embeddings", {"input": "hello"})["model"] == "tiny:1"


def test_a_backpack_alone_is_never_the_default(backpack_store: Path, tmp_path: Path) -> None:
    with _client(backpack_store, tmp_path) as client:
        message = assert_error(
            client.post("/v1/embeddings", json={"input": "hi"}), 400, "invalid_request_error", "model"
        )
        assert "XALIGN_DEFAULT_MODEL" in message
        assert _post(client, "/v1/embeddings", {"input": "hi", "model": BACKPACK})["model"] == f"{BACKPACK}:1"


def test_a_default_outside_the_configured_models_is_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="default_model"):
        Settings(models=["tiny"], default_model="other")
    assert Settings(models=["tiny@production"], default_model="tiny:1").default_model == "tiny:1"
