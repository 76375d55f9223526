"""``/v1/indexes`` over real HTTP routes, the tiny model and real FAISS: create, add, search, describe, delete,
restart, the errors, and re-embedding in the background after a model swap."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from error_body import assert_error
from fastapi.testclient import TestClient
from serving import serving
from tiny_models import build_model_dir, publish_tiny

from xalign.modelstore.refs import ModelRef
from xalign.service.app import create_app
from xalign.service.registry import ModelRegistry
from xalign.service.search.index_service import IndexService
from xalign.service.settings import Settings

TEXTS = ["the cat sat on the mat", "a dog runs in the park", "hello world", "stock markets fell today", "good night"]


@pytest.fixture(scope="module")
def settings(tiny_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data = tmp_path_factory.mktemp("index-data")
    return Settings(store=tiny_store, data_dir=data, threads=1, max_inputs_per_request=8, max_chars_per_input=200)


def _embed(client: TestClient, texts: list[str]) -> np.ndarray:
    body = client.post("/v1/embeddings", json={"input": texts, "model": "tiny"}).json()
    return np.array([d["embedding"] for d in body["data"]], dtype=np.float32)


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
def test_create_add_search_describe_delete(client: TestClient, kind: str) -> None:
    name = f"docs-{kind}"
    params = {"ivf": {"nlist": 2, "train_size": 4}, "hnsw": {"m": 8}}.get(kind, {})
    created = client.post("/v1/indexes", json={"name": name, "kind": kind, "params": params})
    assert created.status_code == 201, created.text
    assert created.json()["model_version"] == 1 and created.json()["count"] == 0
    assert client.post(f"/v1/indexes/{name}/texts", json={"texts": TEXTS[:3]}).json()["ids"] == [0, 1, 2]
    added = client.post(f"/v1/indexes/{name}/texts", json={"texts": TEXTS[3:]}).json()
    assert added["ids"] == [3, 4] and added["model"] == "tiny:1" and added["usage"]["total_tokens"] > 0

    found = client.post(f"/v1/indexes/{name}/search", json={"query": [TEXTS[1], "a dog"], "k": 5}).json()
    assert found["model"] == "tiny:1" and [r["index"] for r in found["data"]] == [0, 1]
    top = found["data"][0]["matches"][0]
    assert (top["id"], top["text"]) == (1, TEXTS[1]) and top["score"] == pytest.approx(1.0, abs=1e-4)
    # Scores are the cosines of the service's own embeddings.
    vectors, query = _embed(client, TEXTS), _embed(client, ["a dog"])[0]
    matches = found["data"][1]["matches"]
    if kind == "flat":
        assert [m["id"] for m in matches] == list(np.argsort(-(vectors @ query), kind="stable"))
    for m in matches:
        assert m["score"] == pytest.approx(float(vectors[m["id"]] @ query), abs=1e-4)

    info = client.get(f"/v1/indexes/{name}").json()
    assert (info["count"], info["kind"], info["dim"], info["model"], info["device"]) == (5, kind, 32, "tiny", "cpu")
    assert info["reembedding"] is None and (kind != "ivf" or info["params"]["nlist"] == 2)
    assert name in [i["name"] for i in client.get("/v1/indexes").json()["data"]]
    assert client.delete(f"/v1/indexes/{name}").json() == {"name": name, "deleted": True}
    assert_error(client.get(f"/v1/indexes/{name}"), 404, "not_found_error")


def test_errors_use_the_one_body(client: TestClient) -> None:
    assert client.post("/v1/indexes", json={"name": "dup"}).status_code == 201
    assert_error(client.post("/v1/indexes", json={"name": "dup"}), 409, "conflict_error", "name")
    assert_error(client.post("/v1/indexes", json={"name": "../etc"}), 422, "validation_error", "name")
    assert_error(client.post("/v1/indexes", json={"name": "x", "kind": "lsh"}), 422, "validation_error")
    bad = client.post("/v1/indexes", json={"name": "x", "kind": "flat", "params": {"nlist": 4}})
    assert_error(bad, 422, "validation_error", "params")
    assert_error(client.post("/v1/indexes", json={"name": "x", "model": "nope"}), 404, "not_found_error", "model")
    for path, body in (("/v1/indexes/ghost/texts", {"texts": ["a"]}), ("/v1/indexes/ghost/search", {"query": "a"})):
        assert_error(client.post(path, json=body), 404, "not_found_error")
    assert_error(client.delete("/v1/indexes/ghost"), 404, "not_found_error")
    assert_error(client.post("/v1/indexes/dup/texts", json={"texts": []}), 400, "invalid_request_error", "texts")
    assert_error(client.post("/v1/indexes/dup/texts", json={"texts": ["a", " "]}), 400, "invalid_request_error")
    assert_error(client.post("/v1/indexes/dup/texts", json={"texts": ["a"] * 9}), 413, "payload_too_large")
    assert_error(client.post("/v1/indexes/dup/search", json={"query": "x" * 201}), 413, "payload_too_large")
    assert_error(client.post("/v1/indexes/dup/search", json={"query": "x", "k": 0}), 422, "validation_error")
    assert client.post("/v1/indexes/dup/search", json={"query": "x"}).json()["data"][0]["matches"] == []
    assert client.get("/health").status_code == 200


def test_restart_restores_every_index(settings: Settings, tmp_path: Path) -> None:
    restart = settings.model_copy(update={"data_dir": tmp_path})
    with TestClient(create_app(restart)) as first:
        first.post("/v1/indexes", json={"name": "a", "kind": "hnsw"})
        first.post("/v1/indexes", json={"name": "b", "kind": "ivf", "params": {"nlist": 2, "train_size": 2}})
        for name in ("a", "b"):
            first.post(f"/v1/indexes/{name}/texts", json={"texts": TEXTS})
        before = first.post("/v1/indexes/b/search", json={"query": TEXTS, "k": 3}).json()
    with TestClient(create_app(restart)) as second:
        assert [(i["name"], i["count"]) for i in second.get("/v1/indexes").json()["data"]] == [("a", 5), ("b", 5)]
        assert second.post("/v1/indexes/b/search", json={"query": TEXTS, "k": 3}).json() == before
        assert second.post("/v1/indexes/a/texts", json={"texts": ["more"]}).json()["ids"] == [5]


# --- re-embedding after a swap -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def v2_store(tiny_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny store plus ``tiny/2``, another random BERT (seed 1), built once."""
    store = tmp_path_factory.mktemp("store-v2")
    shutil.copytree(tiny_store, store, dirs_exist_ok=True)
    publish_tiny(build_model_dir(tmp_path_factory.mktemp("tiny-bert-v2"), seed=1), store)
    return store


@pytest.fixture
def swap_settings(tiny_store: Path, tmp_path: Path) -> Iterator[Settings]:
    store = tmp_path / "store"
    shutil.copytree(tiny_store, store)
    # batch_size 4 → re-embedding chunks of 16 texts, so adds interleave with it.
    yield Settings(store=store, data_dir=tmp_path / "data", threads=1, batch_size=4, poll_interval_s=0)


async def _wait_reembedded(client: httpx.AsyncClient, name: str, version: int) -> dict[str, object]:
    for _ in range(600):
        info = (await client.get(f"/v1/indexes/{name}")).json()
        if info["model_version"] == version and info["reembedding"] is None:
            return dict(info)
        assert info["reembedding"] is None or info["reembedding"]["state"] == "running", info
        await asyncio.sleep(0.05)
    raise AssertionError(f"index {name} not re-embedded: {info}")


def _corpus(n: int, tag: str = "") -> list[str]:
    words = ["cat", "dog", "sun", "rain", "tree", "river", "city", "night", "bread", "music"]
    return [f"{tag}{words[i % 10]} {words[(i * 7) % 10]} number {i}" for i in range(n)]


async def _add_all(client: httpx.AsyncClient, name: str, texts: list[str]) -> list[int]:
    ids: list[int] = []
    for start in range(0, len(texts), 8):
        response = await client.post(f"/v1/indexes/{name}/texts", json={"texts": texts[start : start + 8]})
        assert response.status_code == 200, response.text
        ids += response.json()["ids"]
    return ids


def test_swap_reembeds_in_the_background_without_losing_adds(swap_settings: Settings, v2_store: Path) -> None:
    asyncio.run(_swap_scenario(swap_settings, v2_store))


async def _swap_scenario(swap_settings: Settings, v2_store: Path) -> None:
    async with serving(swap_settings) as (app, client):
        registry: ModelRegistry = app.state.registry
        indexes: IndexService = app.state.indexes
        registry.release_grace_s = 0
        await client.post("/v1/indexes", json={"name": "big", "kind": "hnsw"})
        await client.post("/v1/indexes", json={"name": "small"})
        await _add_all(client, "big", _corpus(160))
        await _add_all(client, "small", TEXTS)
        v1 = await registry.get("tiny")

        shutil.copytree(v2_store / "tiny" / "2", swap_settings.store / "tiny" / "2")
        v2 = await asyncio.to_thread(registry.prepare, ModelRef("tiny", version=2), swap_settings)
        registry.install("tiny", v2)
        await asyncio.sleep(0)  # the listener hands over to the loop
        info = (await client.get("/v1/indexes/big")).json()
        assert info["model_version"] == 1 and info["reembedding"]["target_version"] == 2

        # Until re-embedded, the index is searched with version 1: the query's own text scores 1.
        hit = (await client.post("/v1/indexes/big/search", json={"query": _corpus(1)[0], "k": 1})).json()
        assert hit["model"] == "tiny:1" and hit["data"][0]["matches"][0]["score"] == pytest.approx(1, abs=1e-4)
        late = _corpus(40, tag="late ")
        late_ids = await _add_all(client, "big", late)  # lands while re-embedding runs
        assert late_ids == list(range(160, 200))
        await _wait_reembedded(client, "big", 2)
        await _wait_reembedded(client, "small", 2)

        texts, vectors, meta = await indexes.vectors("big")
        assert texts == _corpus(160) + late and meta.model_version == 2
        expected = v2.encoder.encode(texts)
        np.testing.assert_allclose(vectors, expected, atol=1e-4)
        assert not np.allclose(vectors, v1.encoder.encode(texts), atol=1e-2)
        hit = (await client.post("/v1/indexes/big/search", json={"query": late[3], "k": 1})).json()
        assert hit["model"] == "tiny:2" and hit["data"][0]["matches"][0]["id"] == 163
        await asyncio.sleep(0.05)
        assert registry.get_version("tiny", 1) is None  # no index needs version 1 any more: released

    # A restart restores the re-embedded indexes as they are.
    async with serving(swap_settings) as (app, client):
        info = (await client.get("/v1/indexes/big")).json()
        assert (info["count"], info["model_version"], info["reembedding"]) == (200, 2, None)


def test_an_index_left_behind_by_a_restart_is_searched_with_its_version_then_reembedded(
    swap_settings: Settings, v2_store: Path
) -> None:
    asyncio.run(_restart_scenario(swap_settings, v2_store))


async def _restart_scenario(swap_settings: Settings, v2_store: Path) -> None:
    async with serving(swap_settings) as (_, client):
        await client.post("/v1/indexes", json={"name": "old"})
        await _add_all(client, "old", TEXTS)
        before = (await client.post("/v1/indexes/old/search", json={"query": TEXTS, "k": 2})).json()
    # The store gains version 2 while the service is down: it starts serving 2, the index was built with 1.
    shutil.copytree(v2_store / "tiny" / "2", swap_settings.store / "tiny" / "2")
    async with serving(swap_settings) as (_, client):
        now = (await client.post("/v1/indexes/old/search", json={"query": TEXTS, "k": 2})).json()
        if now["model"] == "tiny:1":
            assert now == before  # still the old space, with the old version loaded for it
        await _wait_reembedded(client, "old", 2)
        assert (await client.get("/v1/models")).json()["data"][0]["version"] == 2
        assert (await client.post("/v1/indexes/old/search", json={"query": TEXTS[0], "k": 1})).json()[
            "model"
        ] == "tiny:2"
