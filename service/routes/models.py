"""``GET /v1/models`` and ``GET /v1/models/{model_id}``: what is served, in OpenAI's list shape with xalign's
details; admin reload, promotion and rollback (``service/routes/releases.py`` moves the aliases)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path
from pydantic import AfterValidator, BaseModel, Field

from xalign.modelstore import StoreError
from xalign.service.dependencies import RegistryDep, WatcherDep
from xalign.service.errors import ConflictError, ServiceError
from xalign.service.limits import MAX_REF_CHARS, NameInPath, valid_unicode
from xalign.service.loaded_model import LoadedModel
from xalign.service.openapi import NAMED, USES_MODEL, error_responses
from xalign.service.registry import ModelRegistry
from xalign.service.routes.releases import valid_name

router = APIRouter(tags=["models"])

# A model reference in the path: NAME, NAME:VERSION or NAME@ALIAS (capped like ``model`` in request bodies).
RefInPath = Annotated[
    str, Path(max_length=MAX_REF_CHARS, description="NAME, NAME:VERSION or NAME@ALIAS"), AfterValidator(valid_unicode)
]


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
    default: bool = Field(default=False, description="whether requests that name no model get this one")


class ModelDetail(ModelCard):
    """The card plus what the manifest says of the model and which versions the store holds."""

    evaluation: dict[str, dict[str, float]] = Field(
        description="variant or task → metric → value, as the manifest records it (e.g. tatoeba.deu-eng)"
    )
    versions: list[int] = Field(description="every version of the model in the store, ascending")
    languages: list[str]
    text_prefixes: dict[str, str] = Field(description="input_type → the prefix its texts get (empty: text_prefix)")


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


async def _default_id(registry: ModelRegistry) -> str | None:
    """The id of the model requests naming none get, or None when there is none (no dual encoder served)."""
    try:
        return (await registry.default()).id
    except (ServiceError, StoreError):
        return None


async def _card(registry: ModelRegistry, loaded: LoadedModel, default_id: str | None) -> ModelCard:
    installed = {m.id: at for m, at in registry.served()}
    return ModelCard(
        id=loaded.id,
        name=loaded.manifest.name,
        version=loaded.manifest.version,
        aliases=await registry.aliases(loaded.manifest.name),
        family=loaded.manifest.family,
        dimension=loaded.manifest.embedding_dim,
        variant=loaded.variant,
        provider=loaded.encoder.provider,
        loaded_at=installed.get(loaded.id),
        default=loaded.id == default_id,
    )


@router.get("/v1/models")
async def list_models(registry: RegistryDep) -> ModelList:
    """Served models with version, aliases, family, dimension, execution provider and whether each is the
    default; load failures."""
    default_id = await _default_id(registry)
    cards = [await _card(registry, loaded, default_id) for loaded, _ in registry.served()]
    failed = registry.failures()
    failures = {name: LoadFailure(message=f.message, at=f.at) for name, f in failed.items()}
    return ModelList(data=cards, errors={name: f.message for name, f in failed.items()}, failures=failures)


@router.get("/v1/models/{model_id}", responses=error_responses(*USES_MODEL))
async def get_model(model_id: RefInPath, registry: RegistryDep) -> ModelDetail:
    """One served model (``name``, ``name:VERSION`` or ``name@ALIAS``, as ``model`` in requests): its card,
    evaluation, languages, input-type prefixes and the versions in the store; 404 for a model not served."""
    loaded = await registry.get(model_id, param="model_id")
    card = await _card(registry, loaded, await _default_id(registry))
    manifest = loaded.manifest
    versions = await asyncio.to_thread(registry.store.versions, manifest.name)
    return ModelDetail(
        **card.model_dump(),
        evaluation=manifest.evaluation,
        versions=versions,
        languages=manifest.languages,
        text_prefixes=manifest.text_prefixes,
    )


@router.post("/v1/models/{name}/reload", responses=error_responses(*NAMED, ConflictError))
async def reload_model(name: NameInPath, watcher: WatcherDep) -> ReloadResult:
    """Load the version ``name`` resolves to now and swap it in; on failure the old version keeps serving."""
    valid_name(name)  # 422 naming the rule, before the store is read
    outcome = await watcher.reload(name)
    if outcome.error is not None and not outcome.changed:
        serving = f"still serving version {outcome.previous}" if outcome.previous is not None else "nothing is served"
        raise ConflictError(f"{name} could not be reloaded ({outcome.error}); {serving}", "name")
    return ReloadResult(name=outcome.name, previous=outcome.previous, version=outcome.version, changed=outcome.changed)
