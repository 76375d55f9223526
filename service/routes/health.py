"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from service.dependencies import RegistryDep
from service.errors import NotReadyError

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    status: str
    models: list[str]


@router.get("/health")
async def health() -> Health:
    """The process is up and answering."""
    return Health(status="ok")


@router.get("/ready", responses={503: {"description": "no model loaded"}})
async def ready(registry: RegistryDep) -> Ready:
    """At least one model is loaded and can answer."""
    if not registry.models:
        raise NotReadyError("no model is loaded yet")
    return Ready(status="ready", models=[m.id for m in registry.models.values()])
