"""``GET /metrics``: the app's own Prometheus registry in the text exposition format.

Read scope, like the other read routes: open when no API keys are configured (the loopback
default), and scraped with ``authorization: {credentials: KEY}`` in Prometheus when they are.
"""

from __future__ import annotations

from typing import cast

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from xalign.service.metrics import Metrics

router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text"}},
)
async def metrics(request: Request) -> Response:
    """Requests and latency per route and status, queue, batches, inference time and loaded versions."""
    registry = cast(Metrics, request.app.state.metrics).registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
