"""SENSIA losses against hand-written references on fixed tensors, and on a tiny Backpack."""

from __future__ import annotations

import math

import pytest
import torch
from backpack_training_data import tiny_model

from xalign.training.objectives.sensia import (
    TokenBatch,
    context_alignment_loss,
    mixture_vectors,
    pooled_contextual,
    sense_alignment_loss,
    sense_mixtures,
    sensia_losses,
)
from xalign.training.objectives.sensia_weights import SensiaWeights


def _mask() -> torch.Tensor:
    return torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]])


def _causal_alpha(batch: int, k: int, seq: int, mask: torch.Tensor, seed: int) -> torch.Tensor:
    """Random rows summing to 1 over allowed j (j <= i, j real), 0 elsewhere: (batch, k, seq, seq)."""
    gen = torch.Generator().manual_seed(seed)
    raw = torch.rand(batch, k, seq, seq, generator=gen)
    allowed = torch.ones(seq, seq).tril()[None, None] * mask[:, None, None, :].float()
    raw = raw * allowed
    return raw / raw.sum(-1, keepdim=True).clamp(min=1e-12)


def test_sense_mixtures_match_explicit_loops() -> None:
    mask = _mask()
    batch, seq, k, d = 3, 4, 2, 3
    senses = torch.randn(batch, seq, k, d, generator=torch.Generator().manual_seed(1))
    alpha = _causal_alpha(batch, k, seq, mask, seed=2)
    got = sense_mixtures(senses, alpha, mask)  # (batch, k, d)
    for b in range(batch):
        n = int(mask[b].sum())
        for sense in range(k):
            want = torch.zeros(d)
            for i in range(seq):
                if mask[b, i]:
                    for j in range(seq):
                        want += alpha[b, sense, i, j] * senses[b, j, sense]
            torch.testing.assert_close(got[b, sense], want / n)


def test_mixtures_sum_over_senses_to_the_pooled_contextual_output() -> None:
    model = tiny_model(vocab_size=50).eval()
    ids = torch.tensor([[2, 7, 9, 11], [2, 5, 0, 0]])
    mask = (ids != 0).long()
    contextual, senses, alpha = model.represent(ids, mask)
    mixtures = sense_mixtures(senses, alpha, mask)
    torch.testing.assert_close(mixtures.sum(1), pooled_contextual(contextual, mask))
    torch.testing.assert_close(pooled_contextual(contextual, mask)[1], contextual[1, :2].mean(0))


def test_mixture_vectors_average_the_per_sense_cosines() -> None:
    gen = torch.Generator().manual_seed(3)
    a, b = torch.randn(2, 4, 5, generator=gen), torch.randn(2, 4, 5, generator=gen)
    va, vb = mixture_vectors(a), mixture_vectors(b)
    torch.testing.assert_close(va.norm(dim=1), torch.ones(2))
    per_sense = torch.nn.functional.cosine_similarity(a, b, dim=-1).mean(1)  # (2,)
    torch.testing.assert_close((va * vb).sum(1), per_sense)


def _reference_info_nce(a: torch.Tensor, b: torch.Tensor, t: float) -> float:
    """Symmetric InfoNCE written out with explicit sums over the batch."""
    a = a / a.norm(dim=1, keepdim=True)
    b = b / b.norm(dim=1, keepdim=True)
    n = len(a)
    total = 0.0
    for i in range(n):
        row = [math.exp(float(a[i] @ b[j]) / t) for j in range(n)]
        col = [math.exp(float(a[j] @ b[i]) / t) for j in range(n)]
        total += -math.log(row[i] / sum(row)) - math.log(col[i] / sum(col))
    return total / (2 * n)


def test_context_alignment_is_symmetric_info_nce() -> None:
    gen = torch.Generator().manual_seed(4)
    a, b = torch.randn(5, 6, generator=gen), torch.randn(5, 6, generator=gen)
    got = float(context_alignment_loss(a, b, temperature=0.3))
    assert got == pytest.approx(_reference_info_nce(a, b, 0.3), rel=1e-5)
    assert float(context_alignment_loss(b, a, temperature=0.3)) == pytest.approx(got, rel=1e-6)


def test_sense_alignment_is_info_nce_over_mixture_vectors() -> None:
    gen = torch.Generator().manual_seed(5)
    a, b = torch.randn(4, 3, 6, generator=gen), torch.randn(4, 3, 6, generator=gen)
    want = _reference_info_nce(mixture_vectors(a), mixture_vectors(b), 0.5)
    assert float(sense_alignment_loss(a, b, temperature=0.5)) == pytest.approx(want, rel=1e-5)


def test_a_perfectly_aligned_batch_gives_the_minimum() -> None:
    t, n = 0.5, 4
    aligned = torch.eye(n, 8)  # orthonormal rows, each pair identical
    best = float(context_alignment_loss(aligned, aligned.clone(), t))
    assert best == pytest.approx(math.log(1 + (n - 1) * math.exp(-1 / t)), rel=1e-5)
    gen = torch.Generator().manual_seed(6)
    assert float(context_alignment_loss(aligned, aligned[[1, 0, 2, 3]], t)) > best + 0.5
    noisy = aligned + 0.3 * torch.randn(n, 8, generator=gen)
    assert float(context_alignment_loss(aligned, noisy, t)) > best
    senses = torch.eye(n * 2, 8).view(n, 2, 8)  # per-sense orthonormal mixtures
    assert float(sense_alignment_loss(senses, senses.clone(), t)) == pytest.approx(best, rel=1e-5)


def _batches() -> tuple[TokenBatch, TokenBatch]:
    src = torch.tensor([[2, 10, 11, 12, 3], [2, 13, 14, 3, 0], [2, 15, 16, 17, 3]])
    tgt = torch.tensor([[2, 20, 21, 3, 0], [2, 22, 23, 24, 3], [2, 25, 3, 0, 0]])
    return TokenBatch(src, (src != 0).long()), TokenBatch(tgt, (tgt != 0).long())


def test_total_is_the_weighted_sum_and_zero_weights_switch_terms_off() -> None:
    model = tiny_model(vocab_size=40).eval()
    source, target = _batches()
    weights = SensiaWeights(target_lm=1.0, source_lm=0.5, sense_align=2.0, context_align=0.25, temperature=0.2)
    with torch.no_grad():
        out = sensia_losses(model, source, target, weights)
    want = out.target_lm + 0.5 * out.source_lm + 2.0 * out.sense_align + 0.25 * out.context_align
    torch.testing.assert_close(out.total, want)
    assert min(float(out.source_lm), float(out.sense_align), float(out.context_align)) > 0
    with torch.no_grad():
        joint = sensia_losses(model, source, target, SensiaWeights(sense_align=0.0, context_align=0.0))
    assert float(joint.sense_align) == 0.0
    assert float(joint.context_align) == 0.0
    torch.testing.assert_close(joint.total, joint.target_lm + joint.source_lm)


def test_alignment_gradients_reach_both_sides_through_the_shared_model() -> None:
    model = tiny_model(vocab_size=40)
    source, target = _batches()
    out = sensia_losses(model, source, target, SensiaWeights(target_lm=0.0, source_lm=0.0))
    torch.autograd.backward(out.total)
    grad = model.embed.weight.grad
    assert grad is not None
    assert float(grad[10].abs().sum()) > 0  # an English-only token
    assert float(grad[20].abs().sum()) > 0  # a target-only token


@pytest.mark.parametrize(
    "kwargs",
    [{"target_lm": -1.0}, {"target_lm": 0.0, "source_lm": 0.0, "sense_align": 0.0, "context_align": 0.0},
     {"temperature": 0.0}, {"sense_align": float("nan")}],
)  # fmt: skip
def test_weights_refuse_bad_values(kwargs: dict[str, float]) -> None:
    # A bad weight or temperature is named; all four weights 0 is refused as a whole.
    with pytest.raises(ValueError, match=r"target_lm|sense_align|SENSIA weights|temperature"):
        SensiaWeights(**kwargs)
