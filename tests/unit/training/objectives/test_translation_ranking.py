"""In-batch InfoNCE translation ranking against a loop-by-loop reference."""

from __future__ import annotations

import math

import pytest
import torch

from xalign.training.objectives.translation_ranking import translation_ranking_loss

SRC = [[1.0, 2.0, 0.5], [0.3, -1.0, 2.0], [-1.5, 0.2, 0.7]]
TGT = [[0.9, 1.5, 1.0], [0.0, -0.8, 1.2], [2.0, 0.1, -0.3]]


def _cos(u: list[float], v: list[float]) -> float:
    dot = sum(a * b for a, b in zip(u, v, strict=True))
    return dot / (math.sqrt(sum(a * a for a in u)) * math.sqrt(sum(b * b for b in v)))


def _one_direction(queries: list[list[float]], keys: list[list[float]], tau: float, margin: float) -> float:
    """-1/B sum_i log softmax_j((cos(q_i, k_j) - margin [j == i]) / tau)[i], written out."""
    total = 0.0
    for i, query in enumerate(queries):
        logits = [(_cos(query, key) - (margin if j == i else 0.0)) / tau for j, key in enumerate(keys)]
        log_denominator = math.log(sum(math.exp(value) for value in logits))
        total += log_denominator - logits[i]
    return total / len(queries)


def _reference(tau: float, margin: float, symmetric: bool) -> float:
    forward = _one_direction(SRC, TGT, tau, margin)
    if not symmetric:
        return forward
    return (forward + _one_direction(TGT, SRC, tau, margin)) / 2


@pytest.mark.parametrize(("tau", "margin", "symmetric"), [(0.5, 0.0, True), (0.5, 0.0, False), (0.1, 0.3, True)])
def test_matches_hand_written_reference(tau: float, margin: float, symmetric: bool) -> None:
    loss = translation_ranking_loss(torch.tensor(SRC), torch.tensor(TGT), tau, symmetric, margin)
    assert loss.ndim == 0
    assert loss.item() == pytest.approx(_reference(tau, margin, symmetric), rel=1e-5)


def test_aligned_orthogonal_batch_is_the_minimum_and_shuffling_costs() -> None:
    src = torch.eye(4) * 3.0  # orthogonal rows; the scale must not matter (normalised inside)
    aligned = translation_ranking_loss(src, torch.eye(4), temperature=0.01)
    shuffled = translation_ranking_loss(src, torch.eye(4)[[1, 2, 3, 0]], temperature=0.01)
    assert aligned.item() < 1e-6
    assert shuffled.item() > 50.0  # every positive is orthogonal, one negative is identical: about 1/tau


def test_symmetric_is_the_mean_of_both_one_sided_directions() -> None:
    src, tgt = torch.tensor(SRC), torch.tensor(TGT)
    forward = translation_ranking_loss(src, tgt, 0.5, symmetric=False)
    backward = translation_ranking_loss(tgt, src, 0.5, symmetric=False)
    assert forward.item() != pytest.approx(backward.item(), rel=1e-3)  # the directions really differ here
    both = translation_ranking_loss(src, tgt, 0.5, symmetric=True)
    assert both.item() == pytest.approx((forward.item() + backward.item()) / 2, rel=1e-6)


def test_margin_raises_the_loss_and_zero_margin_is_plain_infonce() -> None:
    src, tgt = torch.tensor(SRC), torch.tensor(TGT)
    plain = translation_ranking_loss(src, tgt, 0.1)
    assert translation_ranking_loss(src, tgt, 0.1, margin=0.0).item() == plain.item()
    assert translation_ranking_loss(src, tgt, 0.1, margin=0.2).item() > plain.item()


def test_gradients_reach_both_sides_and_low_precision_inputs_give_float32() -> None:
    src = torch.tensor(SRC, requires_grad=True)
    tgt = torch.tensor(TGT, requires_grad=True)
    translation_ranking_loss(src, tgt).backward()
    assert src.grad is not None and src.grad.abs().sum() > 0
    assert tgt.grad is not None and tgt.grad.abs().sum() > 0
    half = translation_ranking_loss(torch.tensor(SRC).bfloat16(), torch.tensor(TGT).bfloat16())
    assert half.dtype == torch.float32


def test_bad_inputs_are_refused_and_an_empty_batch_is_zero() -> None:
    with pytest.raises(ValueError, match="temperature"):
        translation_ranking_loss(torch.tensor(SRC), torch.tensor(TGT), temperature=0.0)
    with pytest.raises(ValueError, match="batch, dim"):
        translation_ranking_loss(torch.tensor(SRC), torch.tensor(TGT)[:2])
    empty = torch.zeros(0, 3, requires_grad=True)
    loss = translation_ranking_loss(empty, torch.zeros(0, 3))
    loss.backward()
    assert loss.item() == 0.0
