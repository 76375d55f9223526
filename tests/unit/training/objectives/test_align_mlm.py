"""ALIGN-MLM pieces: 80/10/10 masking, the tied MLM head and loss, dictionary alignment, piece lookup."""

from __future__ import annotations

import math
from typing import NamedTuple

import pytest
import torch
import transformers
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from torch import nn

from xalign.training.objectives.align_mlm import (
    IGNORE_INDEX,
    MlmHead,
    PaddedPieces,
    dictionary_alignment_loss,
    dictionary_piece_ids,
    mask_tokens,
    mlm_loss,
)

CLS, PAD, SEP, MASK, VOCAB = 0, 1, 2, 3, 1000
UNK = "[UNK]"


def _batch(rows: int = 64, length: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """<s> words </s> <pad>...: row r has 100 + r % 20 real tokens."""
    gen = torch.Generator().manual_seed(7)
    ids = torch.randint(10, VOCAB, (rows, length), generator=gen)
    mask = torch.zeros(rows, length, dtype=torch.long)
    for row in range(rows):
        real = 100 + row % 20
        ids[row, 0], ids[row, real - 1] = CLS, SEP
        ids[row, real:] = PAD
        mask[row, :real] = 1
    return ids, mask


def _mask(ids: torch.Tensor, mask: torch.Tensor, seed: int, probability: float = 0.15) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    return mask_tokens(ids, mask, {CLS, PAD, SEP}, MASK, VOCAB, probability=probability, generator=gen)


def test_mask_tokens_follows_the_80_10_10_rule() -> None:
    ids, mask = _batch()
    masked, labels = _mask(ids, mask, seed=0)
    candidates = mask.bool() & (ids != CLS) & (ids != SEP)
    chosen = labels != IGNORE_INDEX
    assert bool((chosen <= candidates).all())
    assert torch.equal(labels[chosen], ids[chosen])
    assert torch.equal(masked[~chosen], ids[~chosen])  # nothing outside the chosen set is touched
    rate = chosen.sum().item() / candidates.sum().item()  # ~7,000 candidates: sd of the rate ~0.004
    assert rate == pytest.approx(0.15, abs=0.015)
    n = chosen.sum().item()
    as_mask = (masked[chosen] == MASK).sum().item() / n
    unchanged = (masked[chosen] == ids[chosen]).sum().item() / n
    assert as_mask == pytest.approx(0.8, abs=0.04)
    assert unchanged == pytest.approx(0.1, abs=0.03)
    assert 1 - as_mask - unchanged == pytest.approx(0.1, abs=0.03)  # random replacements


def test_specials_and_padding_are_never_masked_even_at_probability_one() -> None:
    ids, mask = _batch(rows=8)
    masked, labels = _mask(ids, mask, seed=0, probability=1.0)
    specials = (ids == CLS) | (ids == SEP) | (mask == 0)
    assert bool((labels[specials] == IGNORE_INDEX).all())
    assert torch.equal(masked[specials], ids[specials])
    assert bool((labels[~specials] != IGNORE_INDEX).all())  # every other token is chosen
    _, none = _mask(ids, mask, seed=0, probability=0.0)
    assert bool((none == IGNORE_INDEX).all())


def test_the_generator_makes_masking_reproducible() -> None:
    ids, mask = _batch(rows=4)
    first, second, other = _mask(ids, mask, seed=3), _mask(ids, mask, seed=3), _mask(ids, mask, seed=4)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    assert not torch.equal(first[1], other[1])


def test_mlm_head_is_tied_and_mlm_loss_is_the_mean_over_labelled_positions() -> None:
    torch.manual_seed(0)
    embedding = nn.Embedding(11, 6)
    head = MlmHead(6, embedding)
    assert all(parameter is not embedding.weight for parameter in head.parameters())
    hidden = torch.randn(2, 3, 6)
    logits = head(hidden)
    assert logits.shape == (2, 3, 11)
    labels = torch.tensor([[4, IGNORE_INDEX, 7], [IGNORE_INDEX, IGNORE_INDEX, 0]])
    expected = 0.0
    for (b, s), label in [((0, 0), 4), ((0, 2), 7), ((1, 2), 0)]:
        row = logits[b, s].tolist()
        expected += math.log(sum(math.exp(v) for v in row)) - row[label]
    loss = mlm_loss(logits, labels)
    assert loss.item() == pytest.approx(expected / 3, rel=1e-5)
    loss.backward()
    assert embedding.weight.grad is not None and embedding.weight.grad.abs().sum() > 0
    assert head.bias.grad is not None


def test_mlm_loss_without_labels_is_a_differentiable_zero() -> None:
    logits = torch.randn(2, 3, 5, requires_grad=True)
    loss = mlm_loss(logits, torch.full((2, 3), IGNORE_INDEX))
    loss.backward()
    assert loss.item() == 0.0


def _embedding() -> nn.Embedding:
    """Row 0 (the padding id of ``PaddedPieces``) is far from the others, so counting padding would show."""
    embedding = nn.Embedding(7, 2)
    with torch.no_grad():
        embedding.weight.copy_(
            torch.tensor([[5.0, -5.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, 0.0], [3.0, 4.0], [1.0, 0.0]])
        )
    return embedding


def test_dictionary_alignment_is_zero_for_identical_word_embeddings() -> None:
    embedding = _embedding()
    assert dictionary_alignment_loss(embedding, [[1], [2, 3]], [[1], [2, 3]]).item() == pytest.approx(0.0, abs=1e-7)
    assert dictionary_alignment_loss(embedding, [[1]], [[6]]).item() == pytest.approx(0.0, abs=1e-7)  # same row


def test_dictionary_alignment_matches_hand_computed_one_minus_cosine() -> None:
    embedding = _embedding()
    # (e1) vs (e4): same direction -> 0; mean(e1, e2) = (0.5, 0.5) vs e5 = (3, 4); e1 vs e2: orthogonal -> 1.
    mean_vs_e5 = 1 - (0.5 * 3 + 0.5 * 4) / (math.sqrt(0.5) * 5.0)
    expected = (0.0 + mean_vs_e5 + 1.0) / 3
    loss = dictionary_alignment_loss(embedding, [[1], [1, 2], [1]], [[4], [5], [2]])
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    padded = dictionary_alignment_loss(
        embedding.weight, PaddedPieces.from_lists([[1], [1, 2], [1]]), PaddedPieces.from_lists([[4], [5], [2]])
    )
    assert padded.item() == pytest.approx(expected, rel=1e-6)


def test_dictionary_alignment_gradients_reach_only_the_words_used() -> None:
    embedding = _embedding()
    dictionary_alignment_loss(embedding, [[1, 2]], [[5]]).backward()
    grad = embedding.weight.grad
    assert grad is not None
    assert grad[[1, 2, 5]].abs().sum() > 0
    assert grad[[0, 3, 4, 6]].abs().sum() == 0


def test_dictionary_alignment_edge_cases() -> None:
    embedding = _embedding()
    empty = dictionary_alignment_loss(embedding, [], [])
    empty.backward()
    assert empty.item() == 0.0
    with pytest.raises(ValueError, match="target words"):
        dictionary_alignment_loss(embedding, [[1]], [[1], [2]])
    with pytest.raises(ValueError, match="at least one piece"):
        dictionary_alignment_loss(embedding, [[]], [[1]])


class WordPair(NamedTuple):
    src: str
    tgt: str


def _tokenizer() -> Tokenizer:
    vocab = {"[UNK]": 0, "[CLS]": 1, "[SEP]": 2, "haus": 3, "house": 4, "kat": 5, "##ze": 6, "cat": 7}
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token=UNK))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 1), ("[SEP]", 2)]
    )
    return tokenizer


def test_dictionary_piece_ids_with_both_tokenizer_kinds() -> None:
    pairs = [WordPair("haus", "house"), WordPair("katze", "cat"), WordPair("", "cat"), WordPair("猫", "cat")]
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=_tokenizer(), unk_token=UNK)
    for tokenizer in (_tokenizer(), fast):
        src, tgt = dictionary_piece_ids(pairs, tokenizer)
        assert src == [[3], [5, 6], [0]]  # no [CLS]/[SEP]; the empty word is dropped; [UNK] kept by default
        assert tgt == [[4], [7], [7]]
        src, tgt = dictionary_piece_ids(pairs, tokenizer, skip_ids={0})
        assert (src, tgt) == ([[3], [5, 6]], [[4], [7]])  # a word left with no pieces drops its pair
