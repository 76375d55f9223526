"""The exported Backpack graph (``training/models/backpack.py``): four float32 outputs from ids and mask.

``BackpackGraph`` takes ``input_ids`` and ``attention_mask`` (int64, (batch, seq), right padding, dynamic batch
and sequence axes) and returns, in the order and under the names of ``modelstore/artifacts.py``:

    sentence_embedding  (batch, d)             masked mean of ``contextual``, L2-normalised (the service's
                                               dual-encoder path runs only this output)
    contextual          (batch, seq, d)        o, the sense-weighted sums
    senses              (batch, seq, k, d)     C(x) of every token
    alpha               (batch, k, seq, seq)   the sense weights, 0 above the diagonal and for padded j

Logits are left out of the graph: a (batch, seq, vocab) output would dominate every request, and the service
computes the few logits it needs from ``senses.npz``'s ``output_embedding`` (no final LayerNorm: the model's
logits are exactly ``contextual @ output_embedding.T``).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from xalign.export.onnx_graph import DEFAULT_OPSET, check_interface, example_batch, export_onnx
from xalign.modelstore.artifacts import BACKPACK_OUTPUTS, OUTPUT_RANKS
from xalign.training.models.backpack import Backpack
from xalign.training.models.pooling import pool


class BackpackGraph(nn.Module):
    """What gets exported: the Backpack's contextual states, senses and alpha plus a pooled sentence vector."""

    def __init__(self, model: Backpack) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Ids and mask (batch, seq) -> (sentence_embedding, contextual, senses, alpha)."""
        contextual, senses, alpha = self.model.represent(input_ids, attention_mask)
        pooled = pool(contextual, attention_mask, "mean")  # (batch, d)
        return nn.functional.normalize(pooled, p=2.0, dim=-1), contextual, senses, alpha


def export_backpack(graph: BackpackGraph, path: Path, opset: int = DEFAULT_OPSET) -> Path:
    """Write ``graph`` as one self-contained ONNX file and check its four-output interface."""
    config = graph.model.config
    example = example_batch(config.vocab_size, first_id=4)
    export_onnx(graph, path, example, outputs=BACKPACK_OUTPUTS, max_positions=config.max_positions, opset=opset)
    check_interface(path, config.n_embd, opset, OUTPUT_RANKS)
    return Path(path)
