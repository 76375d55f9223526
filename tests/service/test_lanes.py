"""Inference lanes: several ready batches run side by side on a single-threaded session, give the same vectors
as one text at a time, and a batch alone keeps the multi-threaded session."""

from __future__ import annotations

import asyncio
import os
import random
import threading
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from serving import serving
from word_texts import WORDS

from xalign.runtime.onnx_encoder import OnnxEncoder
from xalign.runtime.tokenization import Batch
from xalign.service.engine.batcher import Batcher, BatchPolicy
from xalign.service.engine.lanes import Lanes
from xalign.service.loaded_model import lane_count, usable_cores
from xalign.service.settings import Settings


def _texts(rng: random.Random, n: int) -> list[str]:
    return [" ".join(rng.choices(WORDS, k=rng.randint(1, 30))) for _ in range(n)]


async def _embed(client: httpx.AsyncClient, texts: list[str]) -> np.ndarray:
    response = await client.post("/v1/embeddings", json={"input": texts})
    assert response.status_code == 200, response.text
    return np.array([d["embedding"] for d in response.json()["data"]], dtype=np.float32)


def _meet_in_pairs(encoder: OnnxEncoder, threads: list[str]) -> None:
    """Wrap ``encoder.run``: record each batch's thread, and hold the first two runs until both have started,
    so they pass only if two lanes really run at once (one lane at a time would break the barrier)."""
    barrier = threading.Barrier(2, timeout=20)
    original = encoder.run

    def run(batch: Batch) -> Any:
        threads.append(threading.current_thread().name)
        if len(threads) <= 2:
            barrier.wait()
        return original(batch)

    encoder.run = run  # type: ignore[method-assign]


def _threads_of(app: FastAPI) -> tuple[list[str], list[str]]:
    """Record the thread of every batch on the model's own session and on the lanes' session."""
    batcher = app.state.registry.models["tiny"].batcher
    assert batcher.lanes is not None and batcher.lanes.count == 2
    own: list[str] = []
    original = batcher.encoder.run

    def recording(batch: Batch) -> Any:
        own.append(threading.current_thread().name)
        return original(batch)

    batcher.encoder.run = recording
    lanes: list[str] = []
    _meet_in_pairs(batcher.lanes.encoder, lanes)
    return own, lanes


def test_ready_batches_run_side_by_side_and_equal_one_at_a_time(tiny_store: Path) -> None:
    rng = random.Random(11)
    requests = [_texts(rng, rng.randint(2, 6)) for _ in range(24)]
    settings = Settings(store=tiny_store, threads=1, lanes=2, batch_size=4, max_batch_tokens=256, max_wait_ms=20)

    async def scenario() -> tuple[list[str], list[str]]:
        async with serving(settings) as (app, client):
            singles = {t: (await _embed(client, [t]))[0] for texts in requests for t in texts}
            own, lanes = _threads_of(app)
            results = await asyncio.gather(*(_embed(client, texts) for texts in requests))
            for texts, vectors in zip(requests, results, strict=True):
                np.testing.assert_allclose(vectors, np.stack([singles[t] for t in texts]), atol=1e-6, rtol=0)
            return own, lanes

    _, lanes = asyncio.run(scenario())
    assert len(lanes) >= 2 and all(name.startswith("lane-") for name in lanes)
    assert len(set(lanes[:2])) == 2  # the first two lane batches met on two threads


def test_a_batch_alone_runs_on_the_multi_threaded_session(tiny_store: Path) -> None:
    settings = Settings(store=tiny_store, threads=1, lanes=2, inline_max_tokens=0)

    async def scenario() -> tuple[list[str], list[str]]:
        async with serving(settings) as (app, client):
            own, lanes = _threads_of(app)
            for text in ["a dog", "a cat", " ".join(WORDS[:30])]:
                await _embed(client, [text])
            return own, lanes

    own, lanes = asyncio.run(scenario())
    assert len(own) == 3 and all(name.startswith("infer-") for name in own) and lanes == []


def test_close_waits_for_the_lanes(tiny_store: Path) -> None:
    encoder = OnnxEncoder.from_store(tiny_store, "tiny", threads=1)
    lanes = Lanes(OnnxEncoder.from_store(tiny_store, "tiny", threads=1), 2)
    rng = random.Random(5)
    requests = [_texts(rng, 3) for _ in range(12)]

    async def scenario() -> None:
        policy = BatchPolicy.from_settings(Settings(batch_size=2, max_wait_ms=50))
        batcher = Batcher(encoder, policy, lanes=lanes)
        pending = [asyncio.create_task(batcher.submit(texts)) for texts in requests]
        await asyncio.sleep(0)
        await batcher.close()
        assert all(task.done() for task in pending) and lanes.busy == 0
        for texts, task in zip(requests, pending, strict=True):
            np.testing.assert_allclose(task.result()[0], encoder.encode(texts), atol=1e-6, rtol=0)

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("lanes", "threads", "on_gpu", "expected"),
    [(3, None, False, 3), (None, 1, False, 1), (None, 4, False, 4), (2, 2, True, 1)],
)
def test_lane_count(lanes: int | None, threads: int | None, on_gpu: bool, expected: int) -> None:
    assert lane_count(Settings(lanes=lanes, threads=threads), on_gpu) == expected


def test_lanes_default_to_the_usable_cores(tmp_path: Path) -> None:
    assert lane_count(Settings(), on_gpu=False) == usable_cores()
    affinity = len(os.sched_getaffinity(0))
    cpu_max = tmp_path / "cpu.max"
    assert usable_cores(cpu_max) == affinity  # no cgroup file: the affinity
    cpu_max.write_text("max 100000\n")
    assert usable_cores(cpu_max) == affinity
    cpu_max.write_text("150000 100000\n")  # a container limited to 1.5 CPUs
    assert usable_cores(cpu_max) == min(affinity, 2)
    cpu_max.write_text("50000 100000\n")
    assert usable_cores(cpu_max) == 1
