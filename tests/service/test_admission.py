"""Admission by work: the queue bound holds under concurrent large requests, a request is
admitted whole or refused whole (mining: both sides or neither), a per-request token maximum answers 413,
work that cannot start in time answers 503, and a client that closes its socket takes its queued texts
with it — checked on the batcher's counters and the metrics, never on wall time."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from error_body import assert_error
from fastapi import FastAPI
from serving import inference_gate, real_server, serving

from xalign.service.engine.admission import WorkSlots
from xalign.service.engine.batcher import Batcher
from xalign.service.errors import OverloadedError
from xalign.service.search.reembed import embed_retrying
from xalign.service.settings import Settings

# 52 tokens in the tiny BERT's tokenizer (53 to 55 with a number appended).
SENTENCE = "the cat sat on the mat while dogs ran far away from home"


def _batcher(app: FastAPI) -> Batcher:
    batcher = app.state.registry.models["tiny"].batcher
    assert isinstance(batcher, Batcher)
    return batcher


def _gauge(app: FastAPI, name: str) -> float | None:
    value = app.state.metrics.registry.get_sample_value(name, {"model": "tiny"})
    return None if value is None else float(value)


async def _until(condition: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def _hold_worker(app: FastAPI, client: httpx.AsyncClient) -> tuple[threading.Event, asyncio.Task[Any]]:
    """Start one request whose inference is held: everything sent after it stays queued until release."""
    entered, release = inference_gate(app)
    first = asyncio.create_task(client.post("/v1/embeddings", json={"input": ["running"]}))
    assert await asyncio.to_thread(entered.wait, 20)
    return release, first


def test_concurrent_large_requests_cannot_overshoot_the_bounds(tiny_store: Path) -> None:
    # 10 requests of 200 texts (about 10,800 tokens each): the token bound fits 3, the text bound 5.
    settings = Settings(
        store=tiny_store, threads=1, max_queue=1024, max_queue_tokens=33_000, max_inputs_per_request=256
    )

    async def scenario() -> None:
        async with serving(settings) as (app, client):
            release, first = await _hold_worker(app, client)
            peaks = {"texts": 0.0, "tokens": 0.0}
            done = asyncio.Event()

            async def sample() -> None:  # the gauges after every step of the loop
                while not done.is_set():
                    for key, name in (("texts", "xalign_queue_texts"), ("tokens", "xalign_queue_tokens")):
                        peaks[key] = max(peaks[key], _gauge(app, name) or 0.0)
                    await asyncio.sleep(0)

            sampler = asyncio.create_task(sample())
            body = {"input": [f"{SENTENCE} {i}" for i in range(200)]}
            posts = asyncio.gather(*(client.post("/v1/embeddings", json=body) for _ in range(10)))
            responses, _ = await asyncio.wait_for(asyncio.gather(posts, _release_later(release)), 60)
            done.set()
            await sampler
            await first
            statuses = sorted(r.status_code for r in responses)
            assert set(statuses) == {200, 429}, statuses
            for response in responses:
                if response.status_code == 429:
                    assert int(response.headers["retry-after"]) >= 1
                else:
                    assert len(response.json()["data"]) == 200  # whole
            assert peaks["texts"] <= settings.max_queue
            assert 0 < peaks["tokens"] <= settings.max_queue_tokens
            assert statuses.count(200) * 200 <= _batcher(app).embedded  # each admitted request was embedded whole
            assert _gauge(app, "xalign_queue_tokens") == 0

    asyncio.run(scenario())


async def _release_later(release: threading.Event, after: float = 1.0) -> None:
    """Hold inference while the requests are admitted or refused, then let the queue drain."""
    await asyncio.sleep(after)
    release.set()


def test_mining_admits_both_inline_sides_or_neither(tiny_store: Path) -> None:
    settings = Settings(store=tiny_store, threads=1, max_queue=10)

    async def scenario() -> None:
        async with serving(settings) as (app, client):
            release, first = await _hold_worker(app, client)
            batcher = _batcher(app)
            queued = asyncio.create_task(client.post("/v1/embeddings", json={"input": ["a", "b", "c", "d"]}))
            await _until(lambda: batcher.queued == 4)
            # Each side fits (4 + 4 <= 10) but not both (4 + 8 > 10): refused whole, nothing of it queued.
            sides = {
                "src": {"texts": ["one", "two", "three", "four"]},
                "tgt": {"texts": ["eins", "zwei", "drei", "vier"]},
            }
            response = await client.post("/v1/bitext/mine", json=sides)
            assert_error(response, 429, "rate_limit_error", code="queue_full")
            assert int(response.headers["retry-after"]) >= 1
            assert batcher.queued == 4
            assert _gauge(app, "xalign_queue_texts") == 4
            release.set()
            assert (await first).status_code == 200
            assert (await queued).status_code == 200
            mined = await client.post("/v1/bitext/mine", json=sides)
            assert mined.status_code == 200, mined.text
            assert batcher.embedded == 1 + 4 + 8  # the refused request embedded nothing

    asyncio.run(scenario())


def test_per_request_token_maximum_answers_413(tiny_store: Path) -> None:
    settings = Settings(store=tiny_store, threads=1, max_tokens_per_request=110)

    async def scenario() -> None:
        async with serving(settings) as (app, client):
            ok = await client.post("/v1/embeddings", json={"input": [SENTENCE, SENTENCE]})  # 104 tokens
            assert ok.status_code == 200, ok.text
            too_many = await client.post("/v1/embeddings", json={"input": [SENTENCE] * 3})  # 156 tokens
            message = assert_error(too_many, 413, "payload_too_large", "input", code="too_many_tokens")
            assert "110" in message
            # Mining: both sides count together, and neither side alone is at fault.
            sides = {"src": {"texts": [SENTENCE, SENTENCE]}, "tgt": {"texts": [SENTENCE]}}
            mined = await client.post("/v1/bitext/mine", json=sides)
            assert_error(mined, 413, "payload_too_large", code="too_many_tokens")
            assert _batcher(app).embedded == 2

    asyncio.run(scenario())


def test_background_reembedding_splits_a_chunk_over_the_request_maximum(tiny_store: Path) -> None:
    # 110 tokens per request: a chunk of five 52-token texts (260) must be embedded in parts, not fail.
    settings = Settings(store=tiny_store, threads=1, max_tokens_per_request=110)
    texts = [f"{SENTENCE} {i}" for i in range(5)]

    async def scenario() -> None:
        async with serving(settings) as (app, _):
            model = app.state.registry.models["tiny"]
            vectors = await embed_retrying(model, texts)  # (5, dim)
            alone = np.concatenate([(await model.embed([t]))[0] for t in texts])
            np.testing.assert_allclose(vectors, alone, atol=1e-5)

    asyncio.run(scenario())


def test_work_that_cannot_start_in_time_answers_503(tiny_store: Path) -> None:
    settings = Settings(store=tiny_store, threads=1, queue_timeout_s=0.5)

    async def scenario() -> None:
        async with serving(settings) as (app, client):
            release, first = await _hold_worker(app, client)
            late = asyncio.create_task(client.post("/v1/embeddings", json={"input": ["waits", "too", "long"]}))
            try:
                response = await asyncio.wait_for(asyncio.shield(late), 20)
            finally:
                release.set()
            assert_error(response, 503, "service_unavailable", code="queue_timeout")
            assert int(response.headers["retry-after"]) >= 1
            assert (await first).status_code == 200  # it had started: no deadline applies
            dropped = app.state.metrics.registry.get_sample_value(
                "xalign_dropped_texts_total", {"model": "tiny", "reason": "deadline"}
            )
            assert dropped == 3
            assert _batcher(app).queued == 0
            assert (await client.post("/v1/embeddings", json={"input": ["after"]})).status_code == 200
            assert _batcher(app).embedded == 2

    asyncio.run(scenario())


def _post_raw(port: int, path: str, payload: object) -> socket.socket:
    """Send a whole POST on a new socket and return the socket without reading the answer."""
    body = json.dumps(payload).encode()
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(head.encode() + body)
    return sock


def _wait(condition: Callable[[], bool], timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_a_client_that_disconnects_takes_its_queued_texts_with_it(tiny_store: Path) -> None:
    settings = Settings(store=tiny_store, threads=1, max_inputs_per_request=1024)
    with real_server(settings) as (app, port):
        entered, release = inference_gate(app)
        batcher = _batcher(app)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            url = f"http://127.0.0.1:{port}/v1/embeddings"
            running = threading.Thread(target=httpx.post, args=(url,), kwargs={"json": {"input": ["x"]}, "timeout": 60})
            running.start()
            assert entered.wait(30)
            try:
                sock = _post_raw(port, "/v1/embeddings", {"input": [f"{SENTENCE} {i}" for i in range(512)]})
                assert _wait(lambda: batcher.queued == 512), "the 512 texts were not queued"
                sock.close()  # the client goes away while its texts wait
                assert _wait(lambda: batcher.queued == 0), "the departed client's texts stayed queued"
            finally:
                release.set()
            running.join(30)
            after = client.post("/v1/embeddings", json={"input": ["one more"]})
            assert after.status_code == 200
        metrics = app.state.metrics.registry
        assert batcher.embedded == 2  # the held request and the one after: none of the 512
        assert batcher.dropped == 512
        assert metrics.get_sample_value("xalign_dropped_texts_total", {"model": "tiny", "reason": "cancelled"}) == 512
        assert metrics.get_sample_value("xalign_queue_tokens", {"model": "tiny"}) == 0
        closed = metrics.get_sample_value(
            "xalign_requests_total", {"route": "/v1/embeddings", "method": "POST", "status": "499"}
        )
        assert closed == 1


def test_streaming_and_plain_answers_are_untouched_by_the_disconnect_watch(tiny_store: Path) -> None:
    settings = Settings(store=tiny_store, threads=1)
    with real_server(settings) as (_, port), httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        for _ in range(3):  # keep-alive: the same connection serves one request after another
            response = client.post("/v1/embeddings", json={"input": ["hello", "world"]})
            assert response.status_code == 200
            assert len(response.json()["data"]) == 2
        assert client.get("/metrics").status_code in (200, 401)
        assert client.get("/health").status_code == 200


def test_senses_slots_bound_concurrent_work() -> None:
    size = 2

    async def scenario() -> None:
        slots = WorkSlots(size, "senses")
        gate = threading.Event()
        running = [asyncio.create_task(slots.run(gate.wait, 20)) for _ in range(size)]
        await asyncio.sleep(0.05)
        with pytest.raises(OverloadedError):
            await slots.run(time.sleep, 0)
        running[0].cancel()  # a departed client: its thread still runs, so its slot stays taken
        await asyncio.sleep(0.05)
        with pytest.raises(OverloadedError):
            await slots.run(time.sleep, 0)
        gate.set()
        await asyncio.gather(*running, return_exceptions=True)
        await _until(lambda: slots.busy == 0)
        await slots.run(time.sleep, 0)

    asyncio.run(scenario())
