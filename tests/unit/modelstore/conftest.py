"""Fixtures for the model-store tests: a minimal valid spec and a folder of files to publish."""

from __future__ import annotations

from pathlib import Path

import pytest
from store_specs import make_files, make_spec

from xalign.modelstore import ModelSpec, ModelStore


@pytest.fixture
def spec() -> ModelSpec:
    return make_spec()


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    return make_files(tmp_path / "src")


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    """A store holding three versions of ``m``."""
    store = ModelStore(tmp_path / "store")
    for i in range(3):
        store.publish("m", make_spec(), make_files(tmp_path / f"src{i}", b"%d" % i))
    return store
