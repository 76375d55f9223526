"""New versions without downtime: the watcher and the reload route swap versions under a steady stream
of requests with zero failures (embeddings; mining with inline and index sides, index searches and
senses while versions flip back and forth); a corrupt version is refused while the old one keeps serving;
alias promotion and rollback are followed."""

from __future__ import annotations

import asyncio
import functools
import shutil
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pytest
from error_body import assert_error
from fastapi import FastAPI
from serving import serving
from tiny_backpack import build_backpack_dir, publish_tiny_backpack
from tiny_models import build_model_dir, publish_tiny

from xalign.modelstore import ModelStore
from xalign.runtime.onnx_encoder import OnnxEncoder
from xalign.service.registry import LoadedModel
from xalign.service.settings import Settings

PROBE = ["hello world", "the cat sat on the mat"]


@pytest.fixture(scope="module")
def v2_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another random tiny BERT (seed 1): its vectors differ from version 1's."""
    return build_model_dir(tmp_path_factory.mktemp("tiny-bert-v2"), seed=1)


@pytest.fixture(scope="module")
def v2_folder(tiny_store: Path, v2_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A published ``tiny/2`` folder (built once), to drop into a store copy with an atomic rename."""
    store = tmp_path_factory.mktemp("store-v2")
    shutil.copytree(tiny_store, store, dirs_exist_ok=True)
    publish_tiny(v2_model_dir, store)
    return store / "tiny" / "2"


def _copy_store(tiny_store: Path, tmp_path: Path) -> Path:
    store = tmp_path / "store"
    shutil.copytree(tiny_store, store)
    return store


def _drop_in(v2_folder: Path, store: Path, corrupt: bool = False) -> None:
    """Publish the prepared version 2 the way the store does: complete in a hidden folder, then rename."""
    staging = store / "tiny" / ".tmp-test"
    shutil.copytree(v2_folder, staging)
    if corrupt:
        model = staging / "model.onnx"
        data = bytearray(model.read_bytes())
        data[len(data) // 2] ^= 0xFF
        model.write_bytes(bytes(data))
    staging.rename(store / "tiny" / "2")


def _swapped(app: FastAPI) -> asyncio.Queue[tuple[int, int]]:
    """A queue that receives (old version, new version) at every swap, from a registry swap listener."""
    swaps: asyncio.Queue[tuple[int, int]] = asyncio.Queue()

    def listener(_: str, old: LoadedModel, new: LoadedModel) -> None:
        swaps.put_nowait((old.manifest.version, new.manifest.version))

    app.state.registry.add_swap_listener(listener)
    return swaps


async def _until(condition: Callable[[], bool], timeout: float = 20) -> None:
    """Poll ``condition`` with a deadline (for state with no event to await, such as a recorded failure)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def _probe(client: httpx.AsyncClient) -> tuple[str, np.ndarray]:
    response = await client.post("/v1/embeddings", json={"input": PROBE})
    assert response.status_code == 200, response.text
    body = response.json()
    return body["model"], np.array([d["embedding"] for d in body["data"]], dtype=np.float32)


async def _stream(client: httpx.AsyncClient, stop: asyncio.Event, answers: list[tuple[int, str, object]]) -> None:
    """Send requests back to back until ``stop`` (bounded), recording status, model and vectors."""
    for _ in range(5000):
        if stop.is_set():
            return
        response = await client.post("/v1/embeddings", json={"input": PROBE})
        body = response.json()
        answers.append((response.status_code, body.get("model", ""), body.get("data") or body))


def _check_stream(answers: list[tuple[int, str, object]], expected: dict[str, np.ndarray]) -> None:
    """Every answer succeeded, the model switched once from 1 to 2, and each answer has its version's vectors."""
    assert [a for a in answers if a[0] != 200] == []
    models = [model for _, model, _ in answers]
    switch = models.index("tiny:2")
    assert switch > 0
    assert set(models[:switch]) == {"tiny:1"}
    assert set(models[switch:]) == {"tiny:2"}
    for _, model, data in answers:
        assert isinstance(data, list)
        vectors = np.array([d["embedding"] for d in data], dtype=np.float32)
        np.testing.assert_allclose(vectors, expected[model], atol=1e-5)


def test_publish_during_stream_swaps_with_zero_failures(tiny_store: Path, v2_model_dir: Path, tmp_path: Path) -> None:
    store = _copy_store(tiny_store, tmp_path)
    settings = Settings(store=store, threads=1, poll_interval_s=0.2)

    async def scenario() -> None:
        async with serving(settings) as (app, client):
            swaps = _swapped(app)
            stop, answers = asyncio.Event(), []
            streamer = asyncio.create_task(_stream(client, stop, answers))
            await asyncio.to_thread(publish_tiny, v2_model_dir, store)  # the real export + atomic publish
            assert await asyncio.wait_for(swaps.get(), 30) == (1, 2)
            seen = len(answers)
            await _until(lambda: len(answers) > seen + 20)  # keep streaming on the new version
            stop.set()
            await streamer
            registry = app.state.registry
            old = registry.get_version("tiny", 1)
            assert old is not None  # retired but held until released
            registry.release("tiny", 1)
            assert registry.get_version("tiny", 1) is None
            await asyncio.wait_for(old.batcher.close(), 10)  # its queue drained and its worker ended
            cards = (await client.get("/v1/models")).json()
            assert [c["id"] for c in cards["data"]] == ["tiny:2"]
            assert cards["errors"] == {}
            version = app.state.metrics.registry.get_sample_value("xalign_model_version", {"model": "tiny"})
            assert version == 2
        expected = {f"tiny:{v}": OnnxEncoder.from_store(store, f"tiny:{v}", threads=1).encode(PROBE) for v in (1, 2)}
        assert not np.allclose(expected["tiny:1"], expected["tiny:2"], atol=1e-3)
        _check_stream(answers, expected)

    asyncio.run(scenario())


def test_reload_route_needs_admin_and_swaps(tiny_store: Path, v2_folder: Path, tmp_path: Path) -> None:
    store = _copy_store(tiny_store, tmp_path)
    settings = Settings(store=store, threads=1, poll_interval_s=0, api_keys=["reader"], admin_api_keys=["admin"])
    admin = {"Authorization": "Bearer admin"}

    async def scenario() -> None:
        async with serving(settings) as (_, client):
            client.headers["Authorization"] = "Bearer reader"
            _drop_in(v2_folder, store)
            assert (await _probe(client))[0] == "tiny:1"  # polling is off: nothing changes by itself
            assert_error(
                await client.post("/v1/models/tiny/reload", headers={"Authorization": ""}), 401, "authentication_error"
            )
            assert_error(await client.post("/v1/models/tiny/reload"), 403, "permission_error")
            assert_error(await client.post("/v1/models/nope/reload", headers=admin), 404, "not_found_error")
            response = await client.post("/v1/models/tiny/reload", headers=admin)
            assert response.status_code == 200, response.text
            assert response.json() == {"name": "tiny", "previous": 1, "version": 2, "changed": True}
            assert (await _probe(client))[0] == "tiny:2"
            again = await client.post("/v1/models/tiny/reload", headers=admin)
            assert again.json()["changed"] is False

    asyncio.run(scenario())


def test_corrupt_version_is_refused_and_the_old_one_serves(tiny_store: Path, v2_folder: Path, tmp_path: Path) -> None:
    store = _copy_store(tiny_store, tmp_path)
    settings = Settings(store=store, threads=1, poll_interval_s=0.2)

    async def scenario() -> None:
        async with serving(settings) as (app, client):
            before = await _probe(client)
            _drop_in(v2_folder, store, corrupt=True)
            registry = app.state.registry
            await _until(lambda: "tiny" in registry.errors)
            model, vectors = await _probe(client)
            assert model == "tiny:1"
            np.testing.assert_array_equal(vectors, before[1])
            listing = (await client.get("/v1/models")).json()
            assert [c["id"] for c in listing["data"]] == ["tiny:1"]
            assert "model.onnx" in listing["errors"]["tiny"]
            assert listing["failures"]["tiny"]["at"] is not None
            message = assert_error(await client.post("/v1/models/tiny/reload"), 409, "conflict_error")
            assert "still serving version 1" in message
            failures = app.state.metrics.registry.get_sample_value(
                "xalign_model_load_failures_total", {"model": "tiny"}
            )
            assert failures == 2  # the watcher tried once (it does not retry a failed version), the route once
            assert (await client.get("/ready")).status_code == 200

    asyncio.run(scenario())


def test_watcher_follows_promote_and_rollback(tiny_store: Path, v2_folder: Path, tmp_path: Path) -> None:
    store = _copy_store(tiny_store, tmp_path)
    _drop_in(v2_folder, store)
    models = ModelStore(store)
    models.promote("tiny", 1)  # production pins version 1 although 2 is the latest
    settings = Settings(store=store, threads=1, poll_interval_s=0.2)

    async def scenario() -> None:
        async with serving(settings) as (app, client):
            swaps = _swapped(app)
            first = app.state.registry.models["tiny"]
            assert (await _probe(client))[0] == "tiny:1"
            await asyncio.to_thread(models.promote, "tiny", 2)
            assert await asyncio.wait_for(swaps.get(), 30) == (1, 2)
            assert (await _probe(client))[0] == "tiny:2"
            assert (await client.get("/v1/models")).json()["data"][0]["aliases"] == {"production": 2}
            await asyncio.to_thread(models.rollback, "tiny")
            assert await asyncio.wait_for(swaps.get(), 30) == (2, 1)
            assert app.state.registry.models["tiny"] is first  # the held version 1 is reused, not reloaded
            assert (await _probe(client))[0] == "tiny:1"

    asyncio.run(scenario())


def test_served_model_reports_its_provider(tiny_store: Path) -> None:
    expected = "cuda" if "CUDAExecutionProvider" in ort.get_available_providers() else "cpu"

    async def scenario() -> None:
        async with serving(Settings(store=tiny_store, threads=1, poll_interval_s=0)) as (_, client):
            card = (await client.get("/v1/models")).json()["data"][0]
            assert card["provider"] == expected
            no_gpu = Settings(store=tiny_store, threads=1, poll_interval_s=0, prefer_gpu=False)
        async with serving(no_gpu) as (_, client):
            assert (await client.get("/v1/models")).json()["data"][0]["provider"] == "cpu"

    asyncio.run(scenario())


BACKPACK = "tiny-backpack"
SRC = ["the cat sat on the mat", "dogs ran far away", "birds sang all day", "a long day at home"] * 8
TGT = ["birds sang songs all day long", "the cat sat", "home and away", "the dogs ran"] * 8
# Requests per stream kind (bounded), and version flips of both models.
STREAM_LIMIT = 3000
FLIPS = 10


@pytest.fixture(scope="module")
def flip_store(tiny_store: Path, v2_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny 1 and 2, and tiny-backpack 1 and 2 (random seeds 0 and 1)."""
    store = tmp_path_factory.mktemp("flip") / "store"
    shutil.copytree(tiny_store, store)
    _drop_in(v2_folder, store)
    for seed in (0, 1):
        publish_tiny_backpack(build_backpack_dir(tmp_path_factory.mktemp("flip-backpack"), seed=seed), store, BACKPACK)
    return store


_CALLS: dict[str, tuple[str, dict[str, object]]] = {
    "mine-inline": ("/v1/bitext/mine", {"src": {"texts": SRC}, "tgt": {"texts": TGT}, "model": "tiny"}),
    "mine-index": ("/v1/bitext/mine", {"src": {"texts": TGT[:4]}, "tgt": {"index": "docs"}}),
    "search": ("/v1/indexes/docs/search", {"query": TGT[:2], "k": 2}),
    "senses": ("/v1/senses", {"model": BACKPACK, "input": "The cat sat on the mat.", "next_word": " dog"}),
}


async def _stream_kind(
    client: httpx.AsyncClient, kind: str, stop: asyncio.Event, answers: list[tuple[str, int, str]]
) -> None:
    """Send one kind of request back to back until ``stop`` (bounded), recording kind, status and body."""
    path, body = _CALLS[kind]
    for _ in range(STREAM_LIMIT):
        if stop.is_set():
            return
        response = await client.post(path, json=body)
        answers.append((kind, response.status_code, response.text[:300]))


def _grew(answers: list[tuple[str, int, str]], target: int) -> bool:
    return len(answers) >= target


async def _flip(app: FastAPI, store: ModelStore, version: int) -> None:
    """Point production of both models at ``version`` and reload them (as ``xalign-store promote`` + reload)."""
    for name in ("tiny", BACKPACK):
        await asyncio.to_thread(store.promote, name, version)
        outcome = await app.state.watcher.reload(name)
        assert outcome.error is None and outcome.version == version, outcome


def test_flipping_versions_fails_no_mining_search_or_senses_request(flip_store: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(flip_store, store)
    models = ModelStore(store)
    for name in ("tiny", BACKPACK):
        models.promote(name, 1)
    settings = Settings(store=store, threads=1, poll_interval_s=0, data_dir=tmp_path / "data")

    async def scenario() -> None:
        async with serving(settings) as (app, client):
            # Release retired versions at once (no grace): a request that resolved the old version just before
            # a swap must still finish on it. This is the release-while-resolving race, on every flip.
            app.state.registry.release_grace_s = 0.0
            # The index belongs to the backpack: no index keeps tiny's retired version, so it is released at
            # once, while inline mining requests that resolved it are still embedding.
            created = await client.post("/v1/indexes", json={"name": "docs", "model": BACKPACK})
            assert created.status_code == 201, created.text
            added = await client.post("/v1/indexes/docs/texts", json={"texts": SRC[:4] + TGT[:4]})
            assert added.status_code == 200, added.text
            stop, answers = asyncio.Event(), list[tuple[str, int, str]]()
            streams = [
                asyncio.create_task(_stream_kind(client, kind, stop, answers))
                for kind in ("mine-inline", "mine-inline", "mine-inline", "mine-index", "search", "senses")
            ]
            try:
                for flip in range(FLIPS):
                    await _flip(app, models, 2 if flip % 2 == 0 else 1)
                    await _until(functools.partial(_grew, answers, len(answers) + 12))  # streams run between flips
            finally:
                stop.set()
                await asyncio.gather(*streams)
        failed = [a for a in answers if a[1] != 200]
        assert failed == [], f"{len(failed)} of {len(answers)} requests failed: {failed[:3]}"
        assert {kind for kind, _, _ in answers} == set(_CALLS)

    asyncio.run(scenario())
