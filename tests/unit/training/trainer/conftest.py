"""Trainer fixtures: one torch thread, the tiny BERT with a mask token, and the same without dropout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny_models import build_model_dir
from torch_threads import one_torch_thread
from trainer_recipes import add_mask_token

__all__ = ["mlm_model_dir", "one_torch_thread", "still_model"]  # one_torch_thread: a fixture of this folder (autouse)


@pytest.fixture(scope="session")
def mlm_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 2-layer, 32-wide random BERT of ``tests.tiny_models`` with a mask token added."""
    return add_mask_token(build_model_dir(tmp_path_factory.mktemp("tiny-bert-mlm"), seed=0))


def without_dropout(folder: Path) -> Path:
    """Set the saved model's dropout probabilities to 0 (deterministic training steps)."""
    path = folder / "config.json"
    config = json.loads(path.read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    path.write_text(json.dumps(config))
    return folder


@pytest.fixture(scope="session")
def still_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``mlm_model_dir``'s model without dropout: a step computes the same however the batch is split."""
    return without_dropout(add_mask_token(build_model_dir(tmp_path_factory.mktemp("still"), seed=0)))
