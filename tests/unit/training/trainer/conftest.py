"""Trainer fixtures: one torch thread, and the tiny BERT with a mask token."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_models import build_model_dir
from torch_threads import one_torch_thread
from trainer_recipes import add_mask_token

__all__ = ["mlm_model_dir", "one_torch_thread"]  # one_torch_thread: a fixture of this folder (autouse)


@pytest.fixture(scope="session")
def mlm_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 2-layer, 32-wide random BERT of ``tests.tiny_models`` with a mask token added."""
    return add_mask_token(build_model_dir(tmp_path_factory.mktemp("tiny-bert-mlm"), seed=0))
