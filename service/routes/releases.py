"""``POST /v1/models/{name}/promote`` and ``/rollback`` (admin): move an alias in the store, then serve what it names.

The store does the move (``modelstore/store.py``, ``modelstore/release.py``) on a worker thread: its I/O
blocks (an ``flock`` on the model's aliases, atomic writes). Promoting to ``production`` goes through the
release gate, as every path that promotes does (``xalign-store promote``, ``xalign-export retrain``): a
candidate that fails it is refused (409) and stays unpromoted; other aliases just move. A rollback is never
gated. Right after the move the watcher reloads the model (``service/lifecycle.py``), so the answer says
which version is served by the time it is sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from xalign.modelstore import InvalidNameError, ModelNotFoundError, ModelStore, ReferenceNotFoundError
from xalign.modelstore.aliases import DEFAULT_ALIAS, AliasConflictError, validate_alias
from xalign.modelstore.names import validate_name
from xalign.modelstore.release import release
from xalign.service.dependencies import RegistryDep, WatcherDep
from xalign.service.errors import (
    INVALID_NAME,
    MODEL_NOT_FOUND,
    VERSION_NOT_FOUND,
    ConflictError,
    NotFoundError,
    NotReadyError,
    UnprocessableError,
)
from xalign.service.lifecycle import ModelWatcher
from xalign.service.limits import Name, NameInPath
from xalign.service.openapi import NAMED, error_responses

router = APIRouter(tags=["models"])

# 422 bad name or alias, 404 unknown model, version or alias, 409 refused or nothing to roll back to, 503 a
# manifest or alias journal the store cannot read.
MOVES = (*NAMED, ConflictError, NotReadyError)
# Who moved the alias, in the store's history (``xalign-store history``). API keys carry no identity.
ACTOR = "api"


class PromoteRequest(BaseModel):
    """Point ``alias`` at ``version``."""

    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, description="a published version of the model")
    alias: Name = Field(default=DEFAULT_ALIAS, description="the alias to move; production goes through the gate")


class RollbackRequest(BaseModel):
    """Move ``alias`` back to the version it named before its last move."""

    model_config = ConfigDict(extra="forbid")

    alias: Name = Field(default=DEFAULT_ALIAS, description="the alias to move back")


class AliasMove(BaseModel):
    """What an alias named before and after the move, and the version served when the answer was sent."""

    name: str
    alias: str
    previous: int | None = Field(description="the version the alias named before (null: it was not set)")
    version: int = Field(description="the version the alias names now")
    served: int | None = Field(description="the version this replica serves now (null: it does not serve it)")


def valid_name(name: str) -> str:
    """``name`` if it follows the store's naming rules, else 422 naming the rule (before the store is read)."""
    try:
        return validate_name(name)
    except InvalidNameError as exc:
        raise UnprocessableError(str(exc), "name", code=INVALID_NAME) from None


def _valid_alias(alias: str) -> str:
    try:
        return validate_alias(alias)
    except InvalidNameError as exc:
        raise UnprocessableError(str(exc), "alias", code=INVALID_NAME) from None


@contextmanager
def _store_errors(missing: str) -> Iterator[None]:
    """Store errors as what they mean here; ``missing`` names the field of a version or alias not found."""
    try:
        yield
    except ModelNotFoundError as exc:
        raise NotFoundError(str(exc), "name", code=MODEL_NOT_FOUND) from None
    except ReferenceNotFoundError as exc:
        raise NotFoundError(str(exc), missing, code=VERSION_NOT_FOUND) from None
    except AliasConflictError as exc:
        raise ConflictError(str(exc), "alias", code="alias_moved") from None


def _promote(store: ModelStore, name: str, version: int, alias: str) -> int | None:
    """Point ``alias`` at ``version``; the version it named before (blocking)."""
    if alias != DEFAULT_ALIAS:
        previous = store.aliases(name).get(alias)
        store.promote(name, version, alias, actor=ACTOR)
        return previous
    result = release(store, name, version, actor=ACTOR)
    if not result.promoted:
        raise ConflictError(result.summary(), "version", code="release_gate_refused")
    return result.previous


def _rollback(store: ModelStore, name: str, alias: str) -> tuple[int, int]:
    """Move ``alias`` back; (the version it named, the version it names now) (blocking)."""
    aliases = store.aliases(name)
    if alias not in aliases:
        raise NotFoundError(f"{name} has no alias {alias!r} (has {sorted(aliases)})", "alias", code="alias_not_found")
    try:
        return aliases[alias], store.rollback(name, alias, actor=ACTOR)
    except ReferenceNotFoundError as exc:  # the alias never moved: its history holds one version
        raise ConflictError(f"{name}@{alias}: {exc}", "alias", code="nothing_to_roll_back") from None


async def _served_after_move(watcher: ModelWatcher, name: str) -> int | None:
    """Reload ``name`` and return the version served now (None: this replica does not serve the model)."""
    try:
        await watcher.reload(name)
    except NotFoundError:  # not one of the configured models
        return None
    current = watcher.registry.current(name)
    return None if current is None else current.manifest.version


@router.post("/v1/models/{name}/promote", responses=error_responses(*MOVES))
async def promote_model(
    name: NameInPath, request: PromoteRequest, registry: RegistryDep, watcher: WatcherDep
) -> AliasMove:
    """Point an alias (default ``production``, through the release gate) at a version, then serve what the
    model's reference names now. 404 for an unknown model or version, 409 when the gate refuses."""
    valid_name(name)
    alias = _valid_alias(request.alias)
    with _store_errors("version"):
        previous = await asyncio.to_thread(_promote, registry.store, name, request.version, alias)
    served = await _served_after_move(watcher, name)
    return AliasMove(name=name, alias=alias, previous=previous, version=request.version, served=served)


@router.post("/v1/models/{name}/rollback", responses=error_responses(*MOVES))
async def rollback_model(
    name: NameInPath, request: RollbackRequest, registry: RegistryDep, watcher: WatcherDep
) -> AliasMove:
    """Move an alias (default ``production``) back to the version it named before its last move, then serve
    what the model's reference names now. 404 for an unknown model or alias, 409 when there is nothing to
    roll back to."""
    valid_name(name)
    alias = _valid_alias(request.alias)
    with _store_errors("alias"):
        previous, version = await asyncio.to_thread(_rollback, registry.store, name, alias)
    served = await _served_after_move(watcher, name)
    return AliasMove(name=name, alias=alias, previous=previous, version=version, served=served)
