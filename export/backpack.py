"""The Backpack family: a Backpack LM checkpoint (``training/models/backpack.py``) exported, checked, published.

The graph (``export/backpack_graph.py``) gives ``sentence_embedding``, ``contextual``, ``senses`` and ``alpha``;
``senses.npz`` (``export/senses_table.py``) holds the top words of every (token, sense) and the output
embedding. A published version (family ``backpack``) holds ``model.onnx``, ``tokenizer.json`` and
``senses.npz``; its manifest's ``parity`` has ``fp32`` (``sentence_embedding``) and ``fp32.<output>`` for the
other three outputs, each with batch-vs-single. ``BACKPACK`` is the family plug-in the export pipeline
(``export/pipeline.py``) runs, so publishing is idempotent like the dual encoder's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xalign.export.backpack_graph import BackpackGraph, export_backpack
from xalign.export.config import Evaluation, PublishConfig
from xalign.export.family import IntArray, Outputs, Serving, Staged
from xalign.export.senses_table import DEFAULT_N_TOP, build_senses_table
from xalign.modelstore.artifacts import BACKPACK_OUTPUTS, ONNX_FILE, SENSES_FILE, write_senses
from xalign.modelstore.manifest import Family
from xalign.training.models.backpack import load_backpack

EMBEDDING, CONTEXTUAL, SENSES, ALPHA = BACKPACK_OUTPUTS


@dataclass(frozen=True)
class BackpackExportConfig(PublishConfig):
    """What the Backpack export needs besides ``PublishConfig``: the top words stored per (token, sense)."""

    base_model: str = "Backpack LM trained from scratch"
    n_top: int = DEFAULT_N_TOP

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_top < 1:
            raise ValueError(f"n_top must be positive, got {self.n_top}")

    def settings(self) -> dict[str, Any]:
        """The shared settings, the family and ``n_top``."""
        return super().settings() | {"family": BACKPACK.name, "n_top": self.n_top}


def real_rows(outputs: Outputs, mask: IntArray, width: int) -> Outputs:
    """Each output as rows over real tokens only, so padding and batch shape drop out.

    sentence_embedding (texts, d); contextual (tokens, d); senses (tokens, k*d); alpha (tokens*k, ``width``):
    the row alpha[l, i, :] of each real token i, zero-padded to ``width`` positions.
    """
    real = mask.astype(bool)  # (batch, seq)
    alpha = outputs[ALPHA].transpose(0, 2, 1, 3)[real]  # (tokens, k, seq)
    alpha = np.pad(alpha, ((0, 0), (0, 0), (0, width - alpha.shape[-1])))  # (tokens, k, width)
    return {
        EMBEDDING: outputs[EMBEDDING],
        CONTEXTUAL: outputs[CONTEXTUAL][real],
        SENSES: outputs[SENSES][real].reshape(int(real.sum()), -1),
        ALPHA: alpha.reshape(-1, width),
    }


class BackpackFamily:
    """The family plug-in of ``export/family.py`` for ``BackpackExportConfig`` and ``BackpackGraph``."""

    name: Family = "backpack"
    outputs: tuple[str, ...] = BACKPACK_OUTPUTS

    def load(self, config: BackpackExportConfig) -> BackpackGraph:
        """The checkpoint folder wrapped in the four-output graph."""
        return BackpackGraph(load_backpack(Path(config.model_dir)))

    def serving(self, config: BackpackExportConfig, model: BackpackGraph) -> Serving:
        """Mean pooling, normalised, no prefix: what the graph's ``sentence_embedding`` is."""
        sizes = model.model.config
        return Serving(embedding_dim=sizes.n_embd, max_seq_length=config.fitted_length(sizes.max_positions))

    def stage(self, config: BackpackExportConfig, model: BackpackGraph, staging: Path) -> Staged:
        """``model.onnx`` (fp32 only) and ``senses.npz``."""
        onnx_file = export_backpack(model, staging / ONNX_FILE, opset=config.opset)
        table = build_senses_table(model.model, config.n_top)
        return Staged({"fp32": onnx_file}, {SENSES_FILE: write_senses(table, staging / SENSES_FILE)})

    def forward(self, model: BackpackGraph, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Outputs:
        """All four outputs by name."""
        values = model(input_ids, attention_mask)
        return {name: value.numpy().astype(np.float32) for name, value in zip(self.outputs, values, strict=True)}

    def rows(self, outputs: Outputs, attention_mask: IntArray, width: int) -> Outputs:
        """Rows over real tokens (``real_rows``)."""
        return real_rows(outputs, attention_mask, width)

    def measure(
        self,
        config: BackpackExportConfig,  # noqa: ARG002 - the protocol's signature
        variants: Mapping[str, Path],  # noqa: ARG002
        tokenizer: Path,  # noqa: ARG002
        dim: int,  # noqa: ARG002
    ) -> Evaluation:
        """Nothing: a Backpack's evaluation is measured in training and given in the config."""
        return {}


BACKPACK = BackpackFamily()
