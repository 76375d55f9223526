"""``create_app(settings)``: the FastAPI application, with models loaded in the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from service.errors import install_error_handlers
from service.registry import ModelRegistry
from service.routes import embeddings, health, models
from service.settings import Settings


def create_app(settings: Settings) -> FastAPI:
    """Build the app; models are loaded when it starts, not when it is built."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Loading verifies checksums and builds sessions: seconds of blocking work, kept off the loop.
        app.state.registry = await run_in_threadpool(ModelRegistry.from_settings, settings)
        yield

    app = FastAPI(title="xalign", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    install_error_handlers(app)
    for router in (health.router, models.router, embeddings.router):
        app.include_router(router)
    return app
