"""``GET /v1/models``: what is loaded, in OpenAI's list shape with xalign's details; admin reload."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel

from xalign.modelstore import InvalidNameError
from xalign.modelstore.names import validate_name
from xalign.service.dependencies import RegistryDep, WatcherDep
from xalign.service.errors import ConflictError, UnprocessableError
from xalign.service.limits import NameInPath
from xalign.service.openapi import NAMED, error_responses

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
    loaded_at: datetime | None = None


class LoadFailure(BaseModel):
    """Why the last (re)load of a model failed, and when (UTC)."""

    message: str
    at: datetime | None


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
    # Name → why its last (re)load failed; the version in ``data`` keeps serving.
    errors: dict[str, str]
    failures: dict[str, LoadFailure]


class ReloadResult(BaseModel):
    """The served version before and after a reload; ``changed`` is false when it was already current."""

    name: str
    previous: int | None
    version: int | None
    changed: bool


@router.get("/v1/models")
async def list_models(registry: RegistryDep) -> ModelList:
    """Loaded models with version, aliases, family, dimension and execution provider; load failures."""
    cards = [
        ModelCard(
            id=m.id,
            name=m.manifest.name,
            version=m.manifest.version,
            aliases=await registry.aliases(m.manifest.name),
            family=m.manifest.family,
            dimension=m.manifest.embedding_dim,
            variant=m.variant,
            provider=m.encoder.provider,
            loaded_at=installed_at,
        )
        for m, installed_at in registry.served()
    ]
    failed = registry.failures()
    failures = {name: LoadFailure(message=f.message, at=f.at) for name, f in failed.items()}
    return ModelList(data=cards, errors={name: f.message for name, f in failed.items()}, failures=failures)


@router.post("/v1/models/{name}/reload", responses=error_responses(*NAMED, ConflictError))
async def reload_model(name: NameInPath, watcher: WatcherDep) -> ReloadResult:
    """Load the version ``name`` resolves to now and swap it in; on failure the old version keeps serving."""
    try:
        validate_name(name)
    except InvalidNameError as exc:
        raise UnprocessableError(str(exc), "name") from None  # 422 naming the rule, before the store is read
    outcome = await watcher.reload(name)
    if outcome.error is not None and not outcome.changed:
        serving = f"still serving version {outcome.previous}" if outcome.previous is not None else "nothing is served"
        raise ConflictError(f"{name} could not be reloaded ({outcome.error}); {serving}", "name")
    return ReloadResult(name=outcome.name, previous=outcome.previous, version=outcome.version, changed=outcome.changed)
