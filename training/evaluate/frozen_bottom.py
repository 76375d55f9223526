"""Evaluation that reads the frozen bottom layers from a disk cache and runs only the trained top layers.

A model trained with ``train_top_layers`` N of L layers keeps its base's embeddings and first L - N layers, so on
the evaluation texts those layers give the same token states for the base and for every run trained from it.
``FrozenBottom`` stores them once, in the trainer's per-text cache (``trainer/frozen_cache.py``), and a later
model runs only its top N layers on them. The cache folder is named by the sha256 of the frozen weights, the
tokenizer, the depth, the length limit and the prefix (``trainer/frozen_states.cache_folder``): a model whose
bottom differs gets another folder, so a cache never answers for other weights; a wrong depth costs time only.

States computed for a text alone equal its states in any padded batch (``models/bert_split.py``), so the
vectors equal an uncached run's to float tolerance.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import Tensor

from xalign.training.models.bert_split import encoder_layers, top_states
from xalign.training.trainer.batches import TextTokenizer
from xalign.training.trainer.frozen_cache import StateCache
from xalign.training.trainer.frozen_states import FrozenStates, cache_folder


class FrozenBottom:
    """The last hidden states of texts from cached frozen-layer states plus ``model``'s own top layers."""

    def __init__(self, model: Any, tokenizer: Any, root: Path, frozen: int, *, prefix: str, max_length: int) -> None:
        depth = len(encoder_layers(model))
        if not 0 < frozen < depth:
            raise ValueError(f"frozen layers must be between 1 and {depth - 1} for a {depth}-layer model, got {frozen}")
        self.tokenizer = TextTokenizer(tokenizer, prefix, max_length)
        # No corpus: eval texts come from anywhere, and each entry is keyed by its own text.
        self.folder = cache_folder(root, model, self.tokenizer, frozen, ())
        self.cache = StateCache(self.folder, hidden=int(model.config.hidden_size))
        self._states = FrozenStates(self.cache, model, self.tokenizer, frozen)
        self._model = model
        self._frozen = frozen

    def last_hidden(self, texts: Sequence[str]) -> tuple[Tensor, Tensor]:
        """Last-layer states (N, S, H) of ``texts`` (unprefixed) and their padding mask (N, S)."""
        device = next(self._model.parameters()).device
        tokens = self.tokenizer(texts)
        bottom = self._states(texts, tokens).to(device)  # (N, S, H), zero at padding
        mask = tokens.mask.to(device)
        return top_states(self._model, bottom, mask, self._frozen), mask

    def flush(self) -> None:
        """Write the states computed since the last flush (a killed run loses only those)."""
        self.cache.flush()
