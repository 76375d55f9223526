"""Typed dependencies: what routes receive from the app's lifespan state."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request

from service.registry import ModelRegistry
from service.search.index_service import IndexService
from service.settings import Settings


def get_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    return cast(Settings, request.app.state.settings)


def get_registry(request: Request) -> ModelRegistry:
    """The loaded models."""
    return cast(ModelRegistry, request.app.state.registry)


SettingsDep = Annotated[Settings, Depends(get_settings)]
RegistryDep = Annotated[ModelRegistry, Depends(get_registry)]


def get_indexes(request: Request) -> IndexService:
    """The persistent indexes."""
    return cast(IndexService, request.app.state.indexes)


IndexesDep = Annotated[IndexService, Depends(get_indexes)]
