"""Dynamic batching: concurrent requests give the one-at-a-time vectors, batches respect the budget,
a full queue answers 429 with Retry-After, and stopping drains the queue."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from error_body import assert_error
from fastapi import FastAPI
from serving import inference_gate, serving
from word_texts import WORDS

from xalign.runtime.onnx_encoder import OnnxEncoder
from xalign.runtime.tokenization import Batch
from xalign.service.engine.batcher import Batcher, BatchPolicy
from xalign.service.errors import NotReadyError
from xalign.service.settings import Settings


def _texts(rng: random.Random, n: int) -> list[str]:
    """Texts of 1 to 30 words: token lengths from 3 to the tiny model's 64-token limit."""
    return [" ".join(rng.choices(WORDS, k=rng.randint(1, 30))) for _ in range(n)]


def _policy(**settings: Any) -> BatchPolicy:
    """The batching policy of the service settings ``settings`` (the rest at their defaults)."""
    return BatchPolicy.from_settings(Settings(**settings))


def _record_shapes(app: FastAPI) -> list[Batch]:
    """Wrap the served encoder's ``run`` so every inference batch is recorded."""
    encoder = app.state.registry.models["tiny"].encoder
    seen: list[Batch] = []
    original = encoder.run

    def recording(batch: Batch) -> Any:
        seen.append(batch)
        return original(batch)

    encoder.run = recording
    return seen


async def _embed(client: httpx.AsyncClient, texts: list[str]) -> tuple[np.ndarray, int]:
    response = await client.post("/v1/embeddings", json={"input": texts})
    assert response.status_code == 200, response.text
    body = response.json()
    return np.array([d["embedding"] for d in body["data"]], dtype=np.float32), body["usage"]["prompt_tokens"]


def test_concurrent_requests_equal_one_at_a_time(tiny_store: Path) -> None:
    rng = random.Random(7)
    requests = [_texts(rng, rng.randint(1, 3)) for _ in range(50)]
    settings = Settings(store=tiny_store, threads=1, batch_size=8, max_batch_tokens=256, max_wait_ms=20)

    async def scenario() -> None:
        async with serving(settings) as (app, client):
            # One text per request, one request at a time: every batch has one row, no padding.
            singles = {t: (await _embed(client, [t]))[0][0] for texts in requests for t in texts}
            batches = _record_shapes(app)
            results = await asyncio.gather(*(_embed(client, texts) for texts in requests))
            for texts, (vectors, tokens) in zip(requests, results, strict=True):
                np.testing.assert_allclose(vectors, np.stack([singles[t] for t in texts]), atol=1e-6, rtol=0)
                assert tokens == sum(
                    len(app.state.registry.models["tiny"].encoder.tokenizer.encode_ids([t])[0]) for t in texts
                )
            _check_batches(batches, settings)
            metrics = app.state.metrics.registry
            count = metrics.get_sample_value("xalign_batch_texts_count", {"model": "tiny"})
            total = metrics.get_sample_value("xalign_batch_texts_sum", {"model": "tiny"})
            assert total > count, "no batch held more than one text"
            assert metrics.get_sample_value("xalign_queue_texts", {"model": "tiny"}) == 0

    asyncio.run(scenario())


def _check_batches(batches: list[Batch], settings: Settings) -> None:
    """Rows and padded tokens stay within the policy, and rows are sorted by length."""
    assert max(b.input_ids.shape[0] for b in batches) > 1
    for batch in batches:
        rows, width = batch.input_ids.shape
        assert rows <= settings.batch_size
        assert rows == 1 or rows * width <= settings.max_batch_tokens
        assert batch.token_counts == sorted(batch.token_counts)


async def _until(condition: Callable[[], bool], timeout: float = 10) -> None:
    """Poll ``condition`` with a deadline (the request crosses threads before it reaches the queue)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


def test_full_queue_answers_429_and_the_server_stays_healthy(tiny_store: Path) -> None:
    settings = Settings(store=tiny_store, threads=1, batch_size=1, max_queue=4, max_wait_ms=0)

    async def scenario() -> None:
        async with serving(settings) as (app, client):
            entered, release = inference_gate(app)
            batcher = app.state.registry.models["tiny"].batcher
            first = asyncio.create_task(_embed(client, ["running"]))
            await asyncio.to_thread(entered.wait, 10)
            queued = asyncio.create_task(_embed(client, ["one", "two", "three", "four"]))
            await _until(lambda: batcher.queued == 4)
            response = await client.post("/v1/embeddings", json={"input": ["too many"]})
            assert_error(response, 429, "rate_limit_error")
            assert int(response.headers["retry-after"]) >= 1
            release.set()
            assert (await first)[0].shape == (1, 32)
            assert (await queued)[0].shape == (4, 32)
            assert (await client.get("/health")).status_code == 200
            assert (await _embed(client, ["after the storm"]))[0].shape == (1, 32)
            rejected = app.state.metrics.registry.get_sample_value("xalign_rejected_texts_total", {"model": "tiny"})
            assert rejected == 1

    asyncio.run(scenario())


def test_close_drains_the_queue_then_refuses(tiny_store: Path) -> None:
    encoder = OnnxEncoder.from_store(tiny_store, "tiny", threads=1)
    rng = random.Random(3)
    requests = [_texts(rng, 3) for _ in range(10)]

    async def scenario() -> None:
        batcher = Batcher(encoder, _policy(batch_size=4, max_batch_tokens=512, max_wait_ms=50))
        pending = [asyncio.create_task(batcher.submit(texts)) for texts in requests]
        await asyncio.sleep(0)  # let every submit reach the queue before closing
        await batcher.close()
        for texts, task in zip(requests, pending, strict=True):
            vectors, _ = await asyncio.wait_for(task, 5)  # its job finished before close returned
            np.testing.assert_allclose(vectors, encoder.encode(texts), atol=1e-6, rtol=0)
        with pytest.raises(NotReadyError):
            await batcher.submit(["late"])

    asyncio.run(scenario())


def test_cancelled_request_does_not_disturb_others(tiny_store: Path) -> None:
    encoder = OnnxEncoder.from_store(tiny_store, "tiny", threads=1)

    async def scenario() -> None:
        batcher = Batcher(encoder, _policy(batch_size=8, max_wait_ms=50))
        doomed = asyncio.create_task(batcher.submit(["never mind"]))
        kept = asyncio.create_task(batcher.submit(["hello world"]))
        await asyncio.sleep(0)
        doomed.cancel()
        vectors, tokens = await kept
        np.testing.assert_allclose(vectors, encoder.encode(["hello world"]), atol=1e-6, rtol=0)
        assert tokens > 0
        await batcher.close()

    asyncio.run(scenario())


def test_a_retired_batcher_still_serves_the_requests_that_hold_it(tiny_store: Path) -> None:
    """A swap releases the old version (``close_soon``): its worker ends once idle, but a request that
    resolved the version before the swap still gets its vectors (its worker restarts), not a 503."""
    encoder = OnnxEncoder.from_store(tiny_store, "tiny", threads=1)

    async def scenario() -> None:
        batcher = Batcher(encoder, _policy(batch_size=4))
        first, _ = await batcher.submit(["side one"])
        batcher.close_soon()
        await _until(lambda: not batcher.running)  # idle and retired: the worker ended
        second, _ = await batcher.submit(["side two"])
        np.testing.assert_allclose(second, encoder.encode(["side two"]), atol=1e-6, rtol=0)
        await _until(lambda: not batcher.running)  # and ends again once idle
        await batcher.close()
        with pytest.raises(NotReadyError):  # shutdown, unlike retirement, refuses
            await batcher.submit(["late"])
        assert first.shape == (1, 32)

    asyncio.run(scenario())


def _inference_threads(app: FastAPI) -> list[str]:
    """Wrap the served encoder's ``run`` so the name of the thread of every inference batch is recorded."""
    encoder = app.state.registry.models["tiny"].encoder
    names: list[str] = []
    original = encoder.run

    def recording(batch: Batch) -> Any:
        names.append(threading.current_thread().name)
        return original(batch)

    encoder.run = recording
    return names


def test_only_a_lone_short_request_runs_on_the_event_loop_thread(tiny_store: Path) -> None:
    async def scenario() -> tuple[list[str], list[str], list[str]]:
        async with serving(Settings(store=tiny_store, threads=1, inline_max_tokens=16)) as (app, client):
            names = _inference_threads(app)
            await _embed(client, ["a dog"])  # alone, a few tokens: on the loop
            lone = list(names)
            await _embed(client, [" ".join(WORDS[:30])])  # alone, past 16 tokens: on the inference thread
            long = names[len(lone) :]
            names.clear()
            await asyncio.gather(*(_embed(client, ["a cat"]) for _ in range(6)))  # never alone at first
            return lone, long, list(names)

    lone, long, together = asyncio.run(scenario())
    loop_thread = threading.main_thread().name
    assert lone == [loop_thread] and long != [loop_thread] and long[0].startswith("infer-")
    assert any(name.startswith("infer-") for name in together)  # six requests open at once: handed over
