"""The learning-rate schedule at given steps, and which parameters get weight decay."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from xalign.training.trainer.optim import build_optimizer, build_scheduler, lr_factor


@pytest.mark.parametrize(
    ("step", "expected"),
    [(0, 0.25), (1, 0.5), (3, 1.0), (4, 1.0), (8, 1 - 4 / 8), (11, 1 - 7 / 8)],
)
def test_linear_warmup_then_linear_decay(step: int, expected: float) -> None:
    assert lr_factor(step, warmup=4, total=12, decay="linear") == pytest.approx(expected)


@pytest.mark.parametrize(
    ("step", "expected"), [(0, 0.5), (2, 1.0), (6, 0.5), (9, 0.5 * (1 + math.cos(math.pi * 7 / 8)))]
)
def test_cosine_decay(step: int, expected: float) -> None:
    assert lr_factor(step, warmup=2, total=10, decay="cosine") == pytest.approx(expected)


def test_constant_and_no_warmup() -> None:
    assert [lr_factor(s, 0, 5, "constant") for s in range(5)] == [1.0] * 5
    assert lr_factor(0, 0, 5, "linear") == 1.0
    # Every step that is taken learns: the factor never reaches 0 before the end.
    assert min(lr_factor(s, 3, 20, d) for s in range(20) for d in ("linear", "cosine")) > 0


def test_scheduler_applies_the_factor_to_each_optimizer_step() -> None:
    model = nn.Linear(2, 2)
    optimizer = build_optimizer(model.named_parameters(), lr=1e-3, weight_decay=0.01)
    scheduler = build_scheduler(optimizer, warmup=2, total=6, decay="linear")
    seen = []
    for _ in range(6):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    expected = [1e-3 * lr_factor(s, 2, 6, "linear") for s in range(6)]
    assert seen == pytest.approx(expected)
    assert seen[:3] == pytest.approx([5e-4, 1e-3, 1e-3])


def test_no_weight_decay_on_biases_norms_or_frozen_parameters() -> None:
    model = nn.Sequential(nn.Linear(3, 3), nn.LayerNorm(3), nn.Embedding(5, 3))
    model[2].weight.requires_grad_(False)
    optimizer = build_optimizer(model.named_parameters(), lr=1e-3, weight_decay=0.1)
    decayed, plain = optimizer.param_groups
    assert decayed["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
    assert [p.shape for p in decayed["params"]] == [torch.Size([3, 3])]
    assert len(plain["params"]) == 3  # linear bias, LayerNorm weight and bias; the frozen embedding is left out
