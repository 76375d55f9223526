"""Checks shared by the trainer tests: a checkpoint's weights, the logged steps, and exact resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from xalign.training.recipes.recipe import Recipe
from xalign.training.trainer.checkpoint import TRAINING_STATE, list_checkpoints
from xalign.training.trainer.loop import train
from xalign.training.trainer.metrics_log import METRICS_FILE, read_metrics


def checkpoint_weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    return load_file(str(checkpoint / "model.safetensors"))


def train_records(output: Path) -> list[dict]:
    return [r for r in read_metrics(output / METRICS_FILE) if "loss" in r]


def interrupted_equals_uninterrupted(recipe: Recipe, tmp_path: Path) -> None:
    whole = train(recipe, progress=False)
    split_output = tmp_path / "split"
    split = Recipe(**{**recipe.__dict__, "output": split_output})
    first = train(split, stop_after=2, progress=False)
    assert first.step == 2 and [s for s, _ in list_checkpoints(split_output)] == [2]
    resumed = train(split, resume=True, progress=False)
    assert resumed.step == recipe.steps
    assert whole.checkpoint is not None and resumed.checkpoint is not None
    a, b = checkpoint_weights(whole.checkpoint), checkpoint_weights(resumed.checkpoint)
    for key in a:
        assert torch.allclose(a[key], b[key], rtol=0, atol=1e-7), key
    heads_a = torch.load(whole.checkpoint / TRAINING_STATE, weights_only=True)["heads"]
    heads_b = torch.load(resumed.checkpoint / TRAINING_STATE, weights_only=True)["heads"]
    for task, state in heads_a.items():
        for key, value in state.items():
            assert torch.allclose(value, heads_b[task][key], rtol=0, atol=1e-7), (task, key)
    # The same data in the same order gives the same losses step by step.
    losses_a = [r["losses"] for r in train_records(recipe.output)]
    losses_b = [r["losses"] for r in train_records(split_output)]
    assert len(losses_b) == recipe.steps
    for la, lb in zip(losses_a, losses_b, strict=True):
        assert la == pytest.approx(lb, abs=1e-6)
