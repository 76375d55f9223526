"""Typed dependencies: what routes receive from the app's lifespan state.

Every dependency is ``async def``: FastAPI runs a plain ``def`` dependency on a worker thread, and on
a small CPU whose cores are busy with inference each such hop cost about a millisecond per request.
"""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request

from xalign.service.lifecycle import ModelWatcher
from xalign.service.registry import ModelRegistry
from xalign.service.search.index_service import IndexService
from xalign.service.settings import Settings


async def get_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    return cast(Settings, request.app.state.settings)


async def get_registry(request: Request) -> ModelRegistry:
    """The loaded models."""
    return cast(ModelRegistry, request.app.state.registry)


SettingsDep = Annotated[Settings, Depends(get_settings)]
RegistryDep = Annotated[ModelRegistry, Depends(get_registry)]


async def get_indexes(request: Request) -> IndexService:
    """The persistent indexes."""
    return cast(IndexService, request.app.state.indexes)


IndexesDep = Annotated[IndexService, Depends(get_indexes)]


async def get_watcher(request: Request) -> ModelWatcher:
    """The app's store watcher, which performs reloads."""
    return cast(ModelWatcher, request.app.state.watcher)


WatcherDep = Annotated[ModelWatcher, Depends(get_watcher)]
