"""DAP's RTL head on a tiny configuration: shapes, overfitting, padding, tying, directions."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from xalign.training.objectives.representation_translation import (
    DEFAULT_WEIGHT,
    RepresentationTranslation,
    TokenSide,
)

HIDDEN, VOCAB, MAX_POSITIONS = 16, 97, 12


def _head(embedding: nn.Embedding, **kwargs: bool) -> RepresentationTranslation:
    torch.manual_seed(0)
    return RepresentationTranslation(
        HIDDEN, num_heads=2, max_positions=MAX_POSITIONS, output_embedding=embedding, dropout=0.0, **kwargs
    )


def _batch(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """src_hidden (3, 4, H) with the last source token of row 2 padded; tgt (3, 5) with padding in two rows."""
    gen = torch.Generator().manual_seed(seed)
    src_hidden = torch.randn(3, 4, HIDDEN, generator=gen)
    src_mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 0]])
    tgt_ids = torch.randint(VOCAB, (3, 5), generator=gen)
    tgt_mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 1, 1, 1, 0]])
    return src_hidden, src_mask, tgt_ids, tgt_mask


def test_loss_is_a_finite_scalar_and_the_default_weight_is_exposed() -> None:
    head = _head(nn.Embedding(VOCAB, HIDDEN))
    loss = head(*_batch())
    assert loss.ndim == 0
    assert torch.isfinite(loss)
    assert DEFAULT_WEIGHT == 0.1


def test_overfits_a_tiny_fixed_batch() -> None:
    embedding = nn.Embedding(VOCAB, HIDDEN)
    head = _head(embedding)
    batch = _batch()
    optimiser = torch.optim.Adam([*head.parameters(), embedding.weight], lr=1e-2)
    first = head(*batch).item()
    for _ in range(40):
        optimiser.zero_grad()
        loss = head(*batch)
        loss.backward()
        optimiser.step()
    # Memorised, not merely lower: without the placeholders' positions every target position would get the same
    # prediction, and the loss could not go below ~1.4 nats on this batch.
    assert loss.item() < min(0.05, first)


def test_padding_changes_nothing() -> None:
    head = _head(nn.Embedding(VOCAB, HIDDEN)).eval()
    src_hidden, src_mask, tgt_ids, tgt_mask = _batch()
    base = head(src_hidden, src_mask, tgt_ids, tgt_mask)
    # Two more padded source and target columns holding arbitrary values, and new values under old padding.
    noisy = src_hidden.clone()
    noisy[2, 3] = 100.0
    src_padded = torch.cat([noisy, torch.randn(3, 2, HIDDEN)], dim=1)
    src_mask_padded = torch.cat([src_mask, torch.zeros(3, 2, dtype=src_mask.dtype)], dim=1)
    tgt_padded = torch.cat([tgt_ids, torch.randint(VOCAB, (3, 2))], dim=1)
    tgt_mask_padded = torch.cat([tgt_mask, torch.zeros(3, 2, dtype=tgt_mask.dtype)], dim=1)
    padded = head(src_padded, src_mask_padded, tgt_padded, tgt_mask_padded)
    assert padded.item() == pytest.approx(base.item(), abs=1e-5)
    # A change under a real token does change it, so the comparison above can fail.
    real = src_hidden.clone()
    real[2, 0] = 100.0
    assert head(real, src_mask, tgt_ids, tgt_mask).item() != pytest.approx(base.item(), abs=1e-3)


def test_predict_selects_the_scored_positions() -> None:
    head = _head(nn.Embedding(VOCAB, HIDDEN)).eval()
    src_hidden, src_mask, tgt_ids, tgt_mask = _batch()
    base = head(src_hidden, src_mask, tgt_ids, tgt_mask)
    assert head(src_hidden, src_mask, tgt_ids, tgt_mask, tgt_mask.bool()).item() == pytest.approx(base.item())
    first_only = torch.zeros_like(tgt_mask, dtype=torch.bool)
    first_only[:, 0] = True
    assert head(src_hidden, src_mask, tgt_ids, tgt_mask, first_only).item() != pytest.approx(base.item())


def test_no_vocab_sized_parameters_and_the_embedding_is_referenced_not_owned() -> None:
    embedding = nn.Embedding(VOCAB, HIDDEN)
    head = _head(embedding)
    assert all(VOCAB not in parameter.shape for parameter in head.parameters())
    assert all(parameter is not embedding.weight for parameter in head.parameters())
    assert not any(VOCAB in tensor.shape for tensor in head.state_dict().values())
    # The optional bias is the one vocab-sized parameter, which shows the check above can see one.
    with_bias = _head(embedding, output_bias=True)
    assert sum(VOCAB in parameter.shape for parameter in with_bias.parameters()) == 1


def test_gradients_reach_the_encoder_states_and_the_tied_embedding() -> None:
    embedding = nn.Embedding(VOCAB, HIDDEN)
    head = _head(embedding)
    src_hidden, src_mask, tgt_ids, tgt_mask = _batch()
    src_hidden.requires_grad_()
    head(src_hidden, src_mask, tgt_ids, tgt_mask).backward()
    assert src_hidden.grad is not None
    assert src_hidden.grad[:, :3].abs().sum() > 0
    assert src_hidden.grad[2, 3].abs().sum() == 0  # a padded source token gets nothing
    assert embedding.weight.grad is not None and embedding.weight.grad.abs().sum() > 0


def test_bidirectional_is_the_mean_of_both_directions() -> None:
    head = _head(nn.Embedding(VOCAB, HIDDEN)).eval()
    src_hidden, src_mask, src_ids, _ = _batch(seed=1)
    tgt_hidden, tgt_mask, tgt_ids, _ = _batch(seed=2)
    a = TokenSide(src_hidden, src_mask, src_ids[:, :4])
    b = TokenSide(tgt_hidden, tgt_mask, tgt_ids[:, :4])
    expected = (head(a.hidden, a.mask, b.ids, b.mask) + head(b.hidden, b.mask, a.ids, a.mask)) / 2
    assert head.bidirectional(a, b).item() == pytest.approx(expected.item(), rel=1e-6)


def test_misuse_is_reported() -> None:
    untied = RepresentationTranslation(HIDDEN, num_heads=2, max_positions=MAX_POSITIONS, dropout=0.0)
    with pytest.raises(RuntimeError, match="tie"):
        untied(*_batch())
    untied.tie(nn.Embedding(VOCAB, HIDDEN))
    assert torch.isfinite(untied(*_batch()))
    with pytest.raises(ValueError, match="max_positions"):
        untied(torch.zeros(1, 2, HIDDEN), torch.ones(1, 2), torch.zeros(1, 13, dtype=torch.long), torch.ones(1, 13))
    with pytest.raises(ValueError, match="embedding dim"):
        untied.tie(nn.Embedding(VOCAB, HIDDEN + 1))
    with pytest.raises(ValueError, match="output_bias"):
        RepresentationTranslation(HIDDEN, num_heads=2, output_bias=True)
