"""Token sequences for the Backpack LM: encode once, then draw seeded batches padded to their longest text.

A text is encoded as the tokenizer does (``<s>`` first), cut to ``max_len - 1`` ids, and ends with ``</s>``
so that the LM also learns where a sentence stops. Batches walk through seeded permutations of the data,
one epoch after another, so every sequence is seen once per epoch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer

from xalign.training.models.backpack_tokenizer import EOS, PAD, SPECIAL_TOKENS
from xalign.training.objectives.sensia import TokenBatch

EOS_ID = SPECIAL_TOKENS.index(EOS)
PAD_ID = SPECIAL_TOKENS.index(PAD)


def encode_texts(tokenizer: Tokenizer, texts: Sequence[str], max_len: int) -> list[list[int]]:
    """Ids of each text: ``<s>`` + at most ``max_len - 2`` word pieces + ``</s>``."""
    return [[*encoding.ids[: max_len - 1], EOS_ID] for encoding in tokenizer.encode_batch(list(texts))]


def pad_batch(sequences: Sequence[Sequence[int]]) -> TokenBatch:
    """Right-pad ``sequences`` to the longest: ids and mask (batch, seq) int64."""
    longest = max(len(ids) for ids in sequences)
    input_ids = torch.full((len(sequences), longest), PAD_ID, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), longest), dtype=torch.long)
    for row, ids in enumerate(sequences):
        input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        attention_mask[row, : len(ids)] = 1
    return TokenBatch(input_ids=input_ids, attention_mask=attention_mask)


class IndexStream:
    """Endless batches of row indices: each epoch a fresh seeded permutation of ``range(size)``; a short tail is
    topped up from the next epoch, so every batch holds ``batch_size`` distinct rows when it can.

    ``state`` and ``restore`` save and reload the position (the generator's state and the rows drawn but not
    yet used), so a resumed run draws the batches an uninterrupted one would.
    """

    def __init__(self, size: int, batch_size: int, seed: int) -> None:
        if size < 1:
            raise ValueError("no training rows")
        self.size = size
        self.batch_size = batch_size
        self.rng = np.random.default_rng(seed)
        self.pending = np.empty(0, dtype=np.int64)

    def __iter__(self) -> IndexStream:
        return self

    def __next__(self) -> np.ndarray:
        while len(self.pending) < self.batch_size:
            self.pending = np.concatenate([self.pending, self.rng.permutation(self.size)])
        batch, self.pending = self.pending[: self.batch_size], self.pending[self.batch_size :]
        return batch

    def state(self) -> dict[str, Any]:
        """The position: the generator's state and the pending rows."""
        return {"rng": self.rng.bit_generator.state, "pending": self.pending.tolist()}

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a position ``state`` returned."""
        self.rng.bit_generator.state = state["rng"]
        self.pending = np.asarray(state["pending"], dtype=np.int64)


def batch_indices(size: int, batch_size: int, seed: int) -> IndexStream:
    """The ``IndexStream`` of ``size`` rows in batches of ``batch_size``, seeded by ``seed``."""
    return IndexStream(size, batch_size, seed)
