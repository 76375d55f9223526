"""Helpers of the in-process service tests: the app with its lifespan run, behind a real server, and a gate on
inference."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from xalign.runtime.tokenization import Batch
from xalign.service.app import create_app
from xalign.service.settings import Settings


@asynccontextmanager
async def serving(settings: Settings, timeout: float = 60) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app with its lifespan run, and an async client on it (ASGITransport runs no lifespan itself)."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=timeout) as client:
            yield app, client


@contextmanager
def real_server(settings: Settings) -> Iterator[tuple[FastAPI, int]]:
    """The app behind a real uvicorn server on a free loopback port, in a thread; yields the app and the port."""
    app = create_app(settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    try:
        yield app, server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(30)


def inference_gate(app: FastAPI, model: str = "tiny", wait_s: float = 60) -> tuple[threading.Event, threading.Event]:
    """Hold every inference of ``model`` until ``release`` is set; ``entered`` tells that one has started.

    Every batch then runs on the inference thread: a held run on the event loop (a lone short request's)
    would hold every other request too, which is not what a gated test means to build.
    """
    loaded = app.state.registry.models[model]
    loaded.batcher.policy = dataclasses.replace(loaded.batcher.policy, inline_max_tokens=0)
    entered, release = threading.Event(), threading.Event()
    lanes = loaded.batcher.lanes
    for encoder in [loaded.encoder] + ([lanes.encoder] if lanes is not None else []):
        encoder.run = _gated(encoder.run, entered, release, wait_s)
    return entered, release


def _gated(
    run: Callable[[Batch], Any], entered: threading.Event, release: threading.Event, wait_s: float
) -> Callable[[Batch], Any]:
    def gated(batch: Batch) -> Any:
        entered.set()
        assert release.wait(wait_s)
        return run(batch)

    return gated
