"""``senses.npz`` of a Backpack: the top words of every (token, sense), computed a few tokens at a time.

For every vocabulary token t and sense l, the ``n_top`` words w with the largest C(t)[l] . E_w (``top_ids``
int32 and ``top_scores`` float32, (vocab, k, n_top), best first), plus the output embedding E (vocab, d); the
file format is ``modelstore/artifacts.py``'s. No (vocab, k, vocab) tensor is ever held whole.
"""

from __future__ import annotations

import numpy as np
import torch

from xalign.modelstore.artifacts import SenseTable
from xalign.training.models.backpack import Backpack

DEFAULT_N_TOP = 10
# Largest (tokens, k, vocab) score block held at once while building senses.npz (float32: 64 MB).
SENSE_CHUNK_ELEMENTS = 1 << 24


def build_senses_table(
    model: Backpack, n_top: int = DEFAULT_N_TOP, chunk_elements: int = SENSE_CHUNK_ELEMENTS
) -> SenseTable:
    """Top words of every (token, sense): C(t)[l] . E_w, a chunk of tokens at a time."""
    vocab, k = model.config.vocab_size, model.config.n_senses
    if not 1 <= n_top <= vocab:
        raise ValueError(f"n_top must be in 1..{vocab}, got {n_top}")
    rows = max(1, chunk_elements // (k * vocab))  # tokens per chunk
    ids_parts: list[torch.Tensor] = []
    score_parts: list[torch.Tensor] = []
    with torch.inference_mode():
        embedding = model.embed.weight  # (vocab, d)
        for start in range(0, vocab, rows):
            senses = model.senses(torch.arange(start, min(start + rows, vocab)))  # (chunk, k, d)
            top = (senses @ embedding.T).topk(n_top, dim=-1)  # (chunk, k, n_top), best first
            ids_parts.append(top.indices)
            score_parts.append(top.values)
        output_embedding = embedding.numpy().astype(np.float32)
    return SenseTable(
        top_ids=torch.cat(ids_parts).numpy().astype(np.int32),
        top_scores=torch.cat(score_parts).numpy().astype(np.float32),
        output_embedding=output_embedding,
    )
