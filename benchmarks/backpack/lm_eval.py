"""Language-model and sentence-level measurements of a Backpack checkpoint.

- ``perplexity``: exp of the mean next-token negative log-likelihood over every predicted token of the texts,
  each encoded as in training (``<s>`` text ``</s>``, cut to the model's positions), so ``</s>`` is predicted
  too. All models of the experiment share one tokenizer, so their per-token perplexities compare directly.
- ``sentence_embeddings``: the mean of the contextual outputs over the real tokens (``<s>`` included, no
  ``</s>``): exactly the ``sentence_embedding`` the exported ONNX graph serves, L2-normalised.
- ``next_words``: the most likely next tokens after a text (a quick look at what a model learned);
- ``retrieval_accuracy``: 1-nearest-neighbour (cosine) accuracy of finding row i of ``targets`` for row i
  of ``queries``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from tokenizers import Tokenizer

from xalign.training.backpack_training.batches import encode_texts, pad_batch
from xalign.training.models.backpack import Backpack, lm_loss
from xalign.training.objectives.sensia import pooled_contextual

BATCH = 64


@torch.no_grad()
def perplexity(model: Backpack, tokenizer: Tokenizer, texts: Sequence[str]) -> float:
    """Per-token perplexity of ``texts`` under ``model`` (eval mode, batches of 64)."""
    model.eval()
    sequences = encode_texts(tokenizer, texts, model.config.max_positions)
    total, count = 0.0, 0
    for start in range(0, len(sequences), BATCH):
        batch = pad_batch(sequences[start : start + BATCH])
        logits = model(batch.input_ids, batch.attention_mask).logits  # (batch, seq, vocab)
        targets = int(batch.attention_mask[:, 1:].sum())
        total += float(lm_loss(logits, batch.input_ids, batch.attention_mask)) * targets
        count += targets
    return math.exp(total / max(count, 1))


@torch.no_grad()
def sentence_embeddings(model: Backpack, tokenizer: Tokenizer, texts: Sequence[str]) -> np.ndarray:
    """Unit-norm mean-pooled contextual outputs, (len(texts), d) float32."""
    model.eval()
    limit = model.config.max_positions
    sequences = [encoding.ids[:limit] for encoding in tokenizer.encode_batch(list(texts))]
    parts: list[np.ndarray] = []
    for start in range(0, len(sequences), BATCH):
        batch = pad_batch(sequences[start : start + BATCH])
        contextual, _, _ = model.represent(batch.input_ids, batch.attention_mask)  # (batch, seq, d)
        pooled = torch.nn.functional.normalize(pooled_contextual(contextual, batch.attention_mask), dim=-1)
        parts.append(pooled.numpy().astype(np.float32))
    return np.concatenate(parts)


@torch.no_grad()
def next_words(model: Backpack, tokenizer: Tokenizer, text: str, n: int = 5) -> list[str]:
    """The ``n`` most likely next tokens after ``text`` (encoded as the service does: ``<s>`` text), decoded."""
    model.eval()
    ids = torch.tensor([tokenizer.encode(text).ids[: model.config.max_positions]])
    logits = model(ids).logits[0, -1]  # (vocab,)
    return [tokenizer.decode([int(i)], skip_special_tokens=False) for i in logits.topk(n).indices]


def retrieval_accuracy(queries: np.ndarray, targets: np.ndarray) -> float:
    """Share of rows i whose most cosine-similar row of ``targets`` is row i; both (n, d)."""
    if queries.shape != targets.shape:
        raise ValueError(f"queries {queries.shape} and targets {targets.shape} must have the same shape")
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True).clip(min=1e-12)
    t = targets / np.linalg.norm(targets, axis=1, keepdims=True).clip(min=1e-12)
    best = (q @ t.T).argmax(axis=1)  # (n,)
    return float((best == np.arange(len(q))).mean())
