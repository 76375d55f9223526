"""``create_app(settings)``: the FastAPI application, with models loaded in the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from starlette.concurrency import run_in_threadpool

from xalign.modelstore.gc import collect_at_start
from xalign.service.auth import authorize, log_key_configuration
from xalign.service.errors import install_error_handlers
from xalign.service.jobs.worker import JobRunner
from xalign.service.lifecycle import ModelWatcher
from xalign.service.metrics import Metrics
from xalign.service.middleware import install_middleware
from xalign.service.openapi import document_errors
from xalign.service.registry import ModelRegistry
from xalign.service.routes import (
    bitext,
    bitext_jobs,
    embeddings,
    health,
    indexes,
    models,
    releases,
    rerank,
    senses,
    similarity,
    tokenize,
    ui,
)
from xalign.service.routes import metrics as metrics_route
from xalign.service.search.index_service import IndexService
from xalign.service.settings import Settings
from xalign.service.tracing import fastapi_telemetry_off


def create_app(settings: Settings) -> FastAPI:
    """Build the app; models are loaded when it starts, not when it is built."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        log_key_configuration(settings)
        # Best effort: what killed publishers and promoters left (a read-only store is skipped; never fails).
        await run_in_threadpool(collect_at_start, settings.store)
        # Loading verifies checksums and builds sessions: seconds of blocking work, kept off the loop.
        app.state.registry = await run_in_threadpool(ModelRegistry.from_settings, settings, app.state.metrics)
        # Indexes before the watcher: their swap listener must be in place before the first swap.
        app.state.indexes = await IndexService.open(settings, app.state.registry)
        # Mining jobs left queued or running by the last stop resume (service/jobs/worker.py).
        app.state.jobs = await JobRunner.open(settings, app.state.registry)
        app.state.watcher = ModelWatcher(app.state.registry, settings)
        app.state.watcher.start()
        yield
        # Stop swapping first, then let every model's queue drain before its worker ends.
        await app.state.watcher.stop()
        # A running job halts at its next chunk (it embeds through the batchers closed below) and stays queued.
        await app.state.jobs.close()
        await app.state.indexes.close()
        await app.state.registry.close()

    # Every API route is checked against the one table of scopes (service/scopes.py).
    app = FastAPI(
        title="xalign",
        version="0.1.0",
        lifespan=lifespan,
        dependencies=[Depends(authorize)],
        **fastapi_telemetry_off(),  # one span per request, ours, only with the setting tracing (service/tracing.py)
    )
    app.state.settings = settings
    app.state.metrics = Metrics()
    install_error_handlers(app)
    install_middleware(app, app.state.metrics, settings)  # CORS and tracing too, when the settings ask
    app.include_router(metrics_route.router)
    for router in (
        health.router,
        models.router,
        releases.router,
        embeddings.router,
        senses.router,
        indexes.router,
        bitext.router,
        bitext_jobs.router,
        tokenize.router,
        similarity.router,
        rerank.router,
        ui.router,
    ):
        app.include_router(router)
    document_errors(app)
    return app
