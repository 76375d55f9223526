"""Multi-way contrastive alignment: all language pairs, masked missing languages, pair weights."""

from __future__ import annotations

import pytest
import torch

from xalign.training.objectives.multiway_contrastive import multiway_contrastive_loss
from xalign.training.objectives.translation_ranking import translation_ranking_loss


def _emb(batch: int, languages: int, dim: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, languages, dim, generator=torch.Generator().manual_seed(seed))


def test_two_languages_equal_translation_ranking() -> None:
    emb = _emb(5, 2)
    expected = translation_ranking_loss(emb[:, 0], emb[:, 1], temperature=0.1, symmetric=True)
    assert multiway_contrastive_loss(emb, None, temperature=0.1).item() == pytest.approx(expected.item(), rel=1e-6)


def test_every_pair_is_weighted_by_its_valid_rows() -> None:
    emb = _emb(5, 3)
    present = torch.tensor(
        [[True, True, True], [True, True, False], [True, True, False], [True, False, True], [False, True, True]]
    )
    pairs = {(0, 1): [0, 1, 2], (0, 2): [0, 3], (1, 2): [0, 4]}  # 3, 2 and 2 valid rows
    losses = {pair: translation_ranking_loss(emb[rows, pair[0]], emb[rows, pair[1]], 0.05).item()
              for pair, rows in pairs.items()}  # fmt: skip
    weighted = sum(len(pairs[pair]) * loss for pair, loss in losses.items()) / 7
    assert multiway_contrastive_loss(emb, present).item() == pytest.approx(weighted, rel=1e-6)
    assert weighted != pytest.approx(sum(losses.values()) / 3, rel=1e-4)  # weighting matters for this batch


def test_missing_slots_are_ignored_whatever_they_hold() -> None:
    emb = _emb(4, 3)
    present = torch.tensor([[True, True, False], [True, True, True], [True, False, True], [True, True, True]])
    reference = multiway_contrastive_loss(emb, present)
    garbage = emb.clone()
    garbage[~present] = float("nan")
    assert multiway_contrastive_loss(garbage, present).item() == pytest.approx(reference.item(), rel=1e-6)
    # Without the mask the same embeddings give another value, so the mask is what made the difference.
    assert multiway_contrastive_loss(emb, None).item() != pytest.approx(reference.item(), rel=1e-4)


def test_a_pair_with_fewer_than_two_rows_is_skipped() -> None:
    emb = _emb(3, 3)
    present = torch.tensor([[True, True, True], [True, True, False], [True, True, False]])  # slot 2 in one row
    expected = translation_ranking_loss(emb[:, 0], emb[:, 1], 0.05)
    assert multiway_contrastive_loss(emb, present).item() == pytest.approx(expected.item(), rel=1e-6)


def test_no_usable_pair_gives_a_differentiable_zero() -> None:
    emb = _emb(3, 3).requires_grad_()
    present = torch.tensor([[True, False, False], [False, True, False], [False, False, True]])
    loss = multiway_contrastive_loss(emb, present)
    loss.backward()
    assert loss.item() == 0.0
    assert emb.grad is not None


def test_gradients_reach_every_present_slot_and_shapes_are_checked() -> None:
    emb = _emb(4, 3).requires_grad_()
    multiway_contrastive_loss(emb).backward()
    assert emb.grad is not None
    assert bool((emb.grad.abs().sum(dim=-1) > 0).all())
    with pytest.raises(ValueError, match="languages"):
        multiway_contrastive_loss(torch.zeros(4, 8))
    with pytest.raises(ValueError, match="present"):
        multiway_contrastive_loss(_emb(4, 3), torch.ones(4, 2, dtype=torch.bool))
