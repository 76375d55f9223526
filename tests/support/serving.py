"""Helpers of the in-process service tests: the app with its lifespan run, and a gate on inference."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
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


def inference_gate(app: FastAPI, model: str = "tiny", wait_s: float = 60) -> tuple[threading.Event, threading.Event]:
    """Hold every inference of ``model`` until ``release`` is set; ``entered`` tells that one has started."""
    encoder = app.state.registry.models[model].encoder
    entered, release = threading.Event(), threading.Event()
    original: Callable[[Batch], Any] = encoder.run

    def gated(batch: Batch) -> Any:
        entered.set()
        assert release.wait(wait_s)
        return original(batch)

    encoder.run = gated
    return entered, release
