"""Session fixtures shared by every test package: a tiny random BERT and a store with it published."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tiny_models import build_model_dir, publish_tiny

from xalign.modelstore import Manifest, ModelStore
from xalign.modelstore.refs import parse_ref


def pytest_configure(config: pytest.Config) -> None:
    # The tests' expectations (golden vectors, parity with PyTorch, exact scores) are fp32's; the service's
    # default "auto" serves int8 on CPU. Settings read XALIGN_VARIANT, and servers started by e2e tests inherit
    # it. tests/unit/service/test_served_variant.py checks "auto" itself.
    os.environ.setdefault("XALIGN_VARIANT", "fp32")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 32-wide random BERT with a character WordPiece tokenizer (transformers folder)."""
    return build_model_dir(tmp_path_factory.mktemp("tiny-bert"), seed=0)


@pytest.fixture(scope="session")
def tiny_store(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding ``tiny`` version 1 (fp32 + int8 ONNX). Treat it as read-only."""
    store = tmp_path_factory.mktemp("store")
    publish_tiny(tiny_model_dir, store)
    return store


@pytest.fixture(scope="session")
def tiny_manifest(tiny_store: Path) -> Manifest:
    return ModelStore(tiny_store).manifest(parse_ref("tiny"))
