"""Turning a window of parallel rows into the tensors the objectives need (one ``Batch`` per micro-step).

What a batch holds depends on the recipe's objectives (``Needs``):

* ``pairs`` (translation ranking, representation translation): one (source, target) pair per row. An
  English-centric row ``{en, x}`` gives ``(x, en)``; a multi-way row gives two of its languages drawn at
  random. Both objectives share the pair, so the encoder embeds each text once per micro-step.
* ``multiway`` (multi-way contrastive): every language of every row, as a (rows, languages) index table.
* ``masked`` (mlm, align_mlm): one text per row (language drawn at random), BERT-masked.
* ``dictionary`` (align_mlm): word pairs drawn from the dictionaries, as subword pieces.
* ``frozen`` (``cache_frozen_layers``): the frozen layers' states of the text table (``frozen_states.py``).
* ``negatives`` (``hard_negatives``): per row, the table rows of its mined negatives: each negative example's
  text in the row's target language (``hard_negative_epochs.py``).

Every random draw comes from a generator seeded by ``(seed, epoch, position)`` of the example in the data
order (``order.py``), never from global state: a resumed run or another process count draws the same.
Every text gets the recipe's prefix (E5's ``"query: "``); ``content`` marks the tokens that are neither
special nor part of the prefix (the ones worth predicting or masking).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from xalign.training.data.records import ParallelRow, WordPair
from xalign.training.objectives.align_mlm import PaddedPieces, dictionary_piece_ids, mask_tokens
from xalign.training.trainer.order import Window

# Streams of the per-example random generators (one per kind of draw, so adding one changes no other).
_PAIR_STREAM, _MLM_TEXT_STREAM, _MASK_STREAM, _DICT_STREAM = 1, 2, 3, 4
# XLM-R's bare word-boundary piece: many dictionary words share it, so it says nothing about one word.
_BARE_BOUNDARY = "\u2581"


@dataclass(frozen=True)
class Tokenized:
    """Prefixed, padded texts: ``ids`` and ``mask`` (N, S) long; ``content`` (N, S) bool (see module doc)."""

    ids: Tensor
    mask: Tensor
    content: Tensor

    def to(self, device: torch.device) -> Tokenized:
        """The same texts on ``device``."""
        return Tokenized(self.ids.to(device), self.mask.to(device), self.content.to(device))


@dataclass(frozen=True)
class MaskedTexts:
    """BERT-masked texts: ``ids`` (N, S) with masks applied, ``mask`` (N, S), ``labels`` (N, S), -100 = none."""

    ids: Tensor
    mask: Tensor
    labels: Tensor


@dataclass(frozen=True)
class Batch:
    """One process's micro-step: ``size`` rows and the tensors its objectives need (None when not needed).

    ``pairs`` (size, 2), ``multiway`` (size, len(languages)) and ``negatives`` (size, count) index rows of
    ``texts``; -1 = absent. ``frozen`` (len(texts), S, H) holds the frozen layers' states of ``texts``.
    """

    size: int
    texts: Tokenized | None = None
    pairs: Tensor | None = None
    multiway: Tensor | None = None
    languages: tuple[str, ...] = ()
    masked: MaskedTexts | None = None
    dictionary: tuple[PaddedPieces, PaddedPieces] | None = None
    frozen: Tensor | None = None
    negatives: Tensor | None = None

    def to(self, device: torch.device) -> Batch:
        """The same batch with every tensor on ``device``."""
        tensors = {"pairs": self.pairs, "multiway": self.multiway, "frozen": self.frozen, "negatives": self.negatives}
        moved: dict[str, Any] = {
            name: value.to(device) if value is not None else None for name, value in tensors.items()
        }
        moved["texts"] = self.texts.to(device) if self.texts is not None else None
        if self.masked is not None:
            moved["masked"] = MaskedTexts(
                *(t.to(device) for t in (self.masked.ids, self.masked.mask, self.masked.labels))
            )
        if self.dictionary is not None:
            moved["dictionary"] = tuple(PaddedPieces(p.ids.to(device), p.mask.to(device)) for p in self.dictionary)
        return replace(self, **moved)

    def text_rows(self, rows: slice) -> Batch:
        """A batch of only ``rows`` of the text table (and their frozen states): a chunk to embed."""
        if self.texts is None:
            raise RuntimeError("this batch has no texts")
        texts = Tokenized(self.texts.ids[rows], self.texts.mask[rows], self.texts.content[rows])
        frozen = self.frozen[rows] if self.frozen is not None else None
        return Batch(size=int(texts.ids.shape[0]), texts=texts, frozen=frozen)


@dataclass(frozen=True)
class Needs:
    """What the objectives need from a batch; ``mask_prob`` > 0 asks for masked texts."""

    pairs: bool = False
    multiway: bool = False
    mask_prob: float = 0.0
    word_pairs: int = 0


def prefix_pieces(tokenizer: Any, prefix: str) -> int:
    """How many leading tokens ``prefix`` adds to a text (0 when it merges with the text's first token)."""
    if not prefix:
        return 0
    with_prefix = tokenizer(prefix + "a", add_special_tokens=False)["input_ids"]
    alone = tokenizer("a", add_special_tokens=False)["input_ids"]
    count = len(with_prefix) - len(alone)
    return count if count > 0 and list(with_prefix[count:]) == list(alone) else 0


class TextTokenizer:
    """A transformers tokenizer with the recipe's prefix and length limit."""

    def __init__(self, tokenizer: Any, prefix: str, max_length: int) -> None:
        self.tokenizer = tokenizer
        self.prefix = prefix
        self.max_length = max_length
        self.prefix_length = prefix_pieces(tokenizer, prefix)

    def __call__(self, texts: Sequence[str]) -> Tokenized:
        """Tokenize ``prefix + text`` for each text, padded to the longest (at most ``max_length``)."""
        enc = self.tokenizer(
            [self.prefix + text for text in texts],
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
            return_special_tokens_mask=True,
        )
        mask = enc["attention_mask"].long()
        content = mask.bool() & ~enc["special_tokens_mask"].bool()  # (N, S)
        content &= content.long().cumsum(dim=1) > self.prefix_length  # drop the prefix's pieces
        return Tokenized(enc["input_ids"].long(), mask, content)

    def skip_ids(self) -> set[int]:
        """Piece ids that carry no word identity (XLM-R's bare ``▁``), left out of dictionary words."""
        ids = self.tokenizer.convert_tokens_to_ids([_BARE_BOUNDARY])
        unk = self.tokenizer.unk_token_id
        return {int(i) for i in ids if i is not None and i != unk}


# The frozen layers' states (N, S, H) of texts tokenized as (N, S) (``frozen_states.FrozenStates``).
FrozenStatesFn = Callable[[Sequence[str], Tokenized], Tensor]


class NegativeSource(Protocol):
    """Where the collator finds each example's hard negatives (``hard_negative_epochs.HardNegativeEpochs``)."""

    def negatives(self, epoch: int, index: int) -> Sequence[ParallelRow]:
        """The rows mined as hard negatives of example ``index`` in ``epoch``."""
        ...


def example_rng(seed: int, epoch: int, position: int, stream: int) -> np.random.Generator:
    """The generator of one example's draws of one kind; depends on nothing else."""
    return np.random.default_rng([seed, epoch, position, stream])


def choose_pair(row: ParallelRow, rng: np.random.Generator, pivot: str) -> tuple[str, str]:
    """(source, target) languages of ``row``: ``(x, pivot)`` for a ``{pivot, x}`` row, else two at random."""
    langs = row.langs
    if len(langs) == 2 and pivot in langs:
        return (langs[0] if langs[1] == pivot else langs[1]), pivot
    first, second = rng.choice(len(langs), size=2, replace=False)
    return langs[int(first)], langs[int(second)]


class Collator:
    """Builds each micro-step's ``Batch`` from its rows (see the module docstring)."""

    def __init__(
        self,
        tokenizer: TextTokenizer,
        needs: Needs,
        *,
        seed: int,
        pivot: str = "en",
        mask_token_id: int | None = None,
        vocab_size: int = 0,
        dictionary: Sequence[WordPair] = (),
        frozen_states: FrozenStatesFn | None = None,
        negatives: NegativeSource | None = None,
    ) -> None:
        if needs.mask_prob > 0 and mask_token_id is None:
            raise ValueError("the tokenizer has no mask token; mlm and align_mlm need one")
        if needs.word_pairs > 0 and not dictionary:
            raise ValueError("align_mlm needs dictionary entries, but the dictionaries are empty")
        self.tokenizer = tokenizer
        self.needs = needs
        self.seed = seed
        self.pivot = pivot
        self.mask_token_id = mask_token_id
        self.vocab_size = vocab_size
        self.dictionary = list(dictionary)
        self.frozen_states = frozen_states
        self.negative_source = negatives
        self._skip_ids = tokenizer.skip_ids() if dictionary else set()
        self._special_ids = sorted(set(tokenizer.tokenizer.all_special_ids))

    def __call__(self, rows: Sequence[ParallelRow], window: Window) -> Batch:
        """The batch of ``rows``, which are the examples of ``window`` in order."""
        if len(rows) != len(window.positions):
            raise ValueError(f"{len(rows)} rows for a window of {len(window.positions)} positions")
        texts: dict[str, int] = {}  # unique text -> its row in the text table
        batch = Batch(size=len(rows))
        if self.needs.pairs:
            pairs = self._pairs(rows, window, texts)
            batch = replace(batch, pairs=pairs)
            if self.negative_source is not None:
                batch = replace(batch, negatives=self._negatives(rows, window, pairs, texts))
        if self.needs.multiway:
            languages = tuple(sorted({lang for row in rows for lang in row.langs}))
            batch = replace(batch, multiway=self._multiway(rows, languages, texts), languages=languages)
        if texts:
            tokens = self.tokenizer(list(texts))
            frozen = self.frozen_states(list(texts), tokens) if self.frozen_states is not None else None
            batch = replace(batch, texts=tokens, frozen=frozen)
        if self.needs.mask_prob > 0:
            batch = replace(batch, masked=self._masked(rows, window))
        if self.needs.word_pairs > 0:
            batch = replace(batch, dictionary=self._dictionary(window))
        return batch

    def _pairs(self, rows: Sequence[ParallelRow], window: Window, texts: dict[str, int]) -> Tensor:
        index: list[list[int]] = []
        for row, position in zip(rows, window.positions, strict=True):
            src, tgt = choose_pair(row, example_rng(self.seed, window.epoch, position, _PAIR_STREAM), self.pivot)
            index.append([texts.setdefault(row.texts[lang], len(texts)) for lang in (src, tgt)])
        return torch.tensor(index, dtype=torch.long)  # (B, 2)

    def _negatives(self, rows: Sequence[ParallelRow], window: Window, pairs: Tensor, texts: dict[str, int]) -> Tensor:
        """(B, count) table rows of each row's negatives in its target language; -1 where there is none.

        A negative that is some row's target (a duplicate translation) is dropped: it would be a false negative.
        """
        assert self.negative_source is not None
        targets = set(pairs[:, 1].tolist())
        chosen: list[list[int]] = []
        for row, index, position in zip(rows, window.indices, window.positions, strict=True):
            _, lang = choose_pair(row, example_rng(self.seed, window.epoch, position, _PAIR_STREAM), self.pivot)
            found = [other.texts[lang] for other in self.negative_source.negatives(window.epoch, index)
                     if lang in other.texts and texts.get(other.texts[lang]) not in targets]  # fmt: skip
            chosen.append([texts.setdefault(text, len(texts)) for text in found])
        width = max((len(row) for row in chosen), default=0)
        padded = [row + [-1] * (width - len(row)) for row in chosen]
        return torch.tensor(padded, dtype=torch.long).view(len(chosen), width)  # (B, count)

    def _multiway(self, rows: Sequence[ParallelRow], languages: tuple[str, ...], texts: dict[str, int]) -> Tensor:
        index = [
            [texts.setdefault(row.texts[lang], len(texts)) if lang in row.texts else -1 for lang in languages]
            for row in rows
        ]
        return torch.tensor(index, dtype=torch.long)  # (B, L)

    def _masked(self, rows: Sequence[ParallelRow], window: Window) -> MaskedTexts:
        chosen = []
        for row, position in zip(rows, window.positions, strict=True):
            rng = example_rng(self.seed, window.epoch, position, _MLM_TEXT_STREAM)
            chosen.append(row.texts[row.langs[int(rng.integers(len(row.langs)))]])
        tokens = self.tokenizer(chosen)
        seed_seq = np.random.SeedSequence([self.seed, window.epoch, window.positions[0], _MASK_STREAM])
        generator = torch.Generator().manual_seed(int(seed_seq.generate_state(1, np.uint64)[0] >> 1))
        # Only content tokens may be masked: the prefix ("query: ") is the same in every text.
        ids, labels = mask_tokens(
            tokens.ids,
            tokens.content.long(),
            self._special_ids,
            int(self.mask_token_id or 0),
            self.vocab_size,
            probability=self.needs.mask_prob,
            generator=generator,
        )
        return MaskedTexts(ids, tokens.mask, labels)

    def _dictionary(self, window: Window) -> tuple[PaddedPieces, PaddedPieces]:
        rng = example_rng(self.seed, window.epoch, window.positions[0], _DICT_STREAM)
        drawn = rng.integers(len(self.dictionary), size=self.needs.word_pairs)
        words = [(self.dictionary[int(i)].src, self.dictionary[int(i)].tgt) for i in drawn]
        src, tgt = dictionary_piece_ids(words, self.tokenizer.tokenizer, self._skip_ids)
        return PaddedPieces.from_lists(src), PaddedPieces.from_lists(tgt)
