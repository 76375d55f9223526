"""``GET /v1/models``: what is loaded, in OpenAI's list shape with xalign's details."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel

from service.dependencies import RegistryDep

router = APIRouter(tags=["models"])


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    owned_by: str = "xalign"
    name: str
    version: int
    aliases: dict[str, int]
    family: str
    dimension: int
    variant: str
    provider: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
    errors: dict[str, str]


@router.get("/v1/models")
async def list_models(registry: RegistryDep) -> ModelList:
    """Loaded models with version, aliases, family, dimension and execution provider."""
    cards = [
        ModelCard(
            id=m.id,
            name=m.manifest.name,
            version=m.manifest.version,
            aliases=registry.store.aliases(m.manifest.name),
            family=m.manifest.family,
            dimension=m.manifest.embedding_dim,
            variant=m.variant,
            provider=m.encoder.provider,
        )
        for m in registry.models.values()
    ]
    return ModelList(data=cards, errors=dict(registry.errors))
