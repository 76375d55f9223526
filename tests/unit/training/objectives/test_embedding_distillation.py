"""Embedding distillation against a hand-written reference, its minimum, and the teacher's lack of gradient."""

from __future__ import annotations

import math

import pytest
import torch

from xalign.training.objectives.embedding_distillation import embedding_distillation_loss

SRC = [[1.0, 2.0, 0.5], [0.3, -1.0, 2.0]]
TGT = [[0.9, 1.5, 1.0], [0.0, -0.8, 1.2]]
TEACHER = [[1.0, 1.0, 1.0], [0.5, -1.0, 1.0]]


def _cos(u: list[float], v: list[float]) -> float:
    dot = sum(a * b for a, b in zip(u, v, strict=True))
    return dot / (math.sqrt(sum(a * a for a in u)) * math.sqrt(sum(b * b for b in v)))


def _mean_distance(rows: list[list[float]], teacher: list[list[float]]) -> float:
    return sum(1 - _cos(u, v) for u, v in zip(rows, teacher, strict=True)) / len(rows)


@pytest.mark.parametrize("anchor_weight", [1.0, 0.25])
def test_matches_hand_written_reference(anchor_weight: float) -> None:
    loss = embedding_distillation_loss(torch.tensor(SRC), torch.tensor(TGT), torch.tensor(TEACHER), anchor_weight)
    expected = _mean_distance(SRC, TEACHER) + anchor_weight * _mean_distance(TGT, TEACHER)
    assert loss.ndim == 0
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_student_on_the_teacher_is_the_minimum_whatever_the_scale() -> None:
    teacher = torch.tensor(TEACHER)
    assert embedding_distillation_loss(2 * teacher, 0.5 * teacher, teacher).item() == pytest.approx(0.0, abs=1e-6)
    assert embedding_distillation_loss(torch.tensor(SRC), teacher, teacher).item() > 0.05


def test_only_the_student_gets_gradients() -> None:
    src = torch.tensor(SRC, requires_grad=True)
    tgt = torch.tensor(TGT, requires_grad=True)
    teacher = torch.tensor(TEACHER, requires_grad=True)
    embedding_distillation_loss(src, tgt, teacher).backward()
    assert src.grad is not None and tgt.grad is not None
    assert src.grad.abs().sum() > 0 and tgt.grad.abs().sum() > 0
    assert teacher.grad is None


def test_empty_batch_and_bad_shapes() -> None:
    empty = torch.zeros(0, 3, requires_grad=True)
    loss = embedding_distillation_loss(empty, empty, torch.zeros(0, 3))
    assert loss.item() == 0.0
    loss.backward()
    with pytest.raises(ValueError, match="one shape"):
        embedding_distillation_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 4))
