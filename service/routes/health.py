"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from xalign.service.dependencies import RegistryDep
from xalign.service.errors import NotReadyError
from xalign.service.openapi import error_responses

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    status: str
    models: list[str] = Field(description="served versions, name:VERSION")
    missing: list[str] = Field(description="models this replica must serve and does not (empty when ready)")


@router.get("/health")
async def health() -> Health:
    """The process is up and answering."""
    return Health(status="ok")


@router.get("/ready", responses=error_responses(NotReadyError))
async def ready(registry: RegistryDep) -> Ready:
    """Every model this replica serves has a served version: the configured ``models``, else every model found
    in the store at start (a model whose newer version failed to load still serves its old one: ready).

    503 otherwise, naming the missing models; why they failed is in ``GET /v1/models``.
    """
    missing = registry.missing()
    served = registry.served()
    if missing or not served:
        waiting = f"missing: {', '.join(missing)}" if missing else "no model is loaded yet"
        raise NotReadyError(f"not every model is served ({waiting}); load errors are in GET /v1/models")
    return Ready(status="ready", models=[loaded.id for loaded, _ in served], missing=[])
