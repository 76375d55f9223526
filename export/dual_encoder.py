"""The dual-encoder family: a Hugging Face encoder, pooling and optional L2 normalisation in one exported graph.

``DualEncoder`` is what gets exported, so the ONNX file computes exactly what PyTorch computes: inputs
``input_ids`` and ``attention_mask`` (int64, (batch, seq)), output ``sentence_embedding`` (float32,
(batch, dim)); the exporter is ``export/onnx_graph.py``'s. ``DUAL_ENCODER`` is the family plug-in the export
pipeline (``export/pipeline.py``) runs: fp32 plus the int8 and fp16 variants derived from it, parity on every
variant, Tatoeba and BUCC before publishing.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import AutoModel

from xalign.export.config import Evaluation
from xalign.export.dual_encoder_config import ExportConfig
from xalign.export.evaluation import measure
from xalign.export.family import IntArray, Outputs, Serving, Staged
from xalign.export.fp16 import convert_fp16
from xalign.export.int8_selection import Calibration, load_calibration_texts, quantization_evaluation
from xalign.export.onnx_graph import DEFAULT_OPSET, check_interface, example_batch, export_onnx
from xalign.export.progress import step
from xalign.export.quantize import quantize_int8
from xalign.modelstore.artifacts import SENTENCE_EMBEDDING, VARIANT_FILES
from xalign.modelstore.manifest import Family
from xalign.runtime.tokenization import TextTokenizer
from xalign.training.models.pooling import POOLING_MODES, Pooling, pool


class DualEncoder(nn.Module):
    """Encoder + pooling (+ L2 normalisation) mapping token ids to one vector per text."""

    def __init__(self, encoder: nn.Module, pooling: Pooling = "mean", normalize: bool = True) -> None:
        super().__init__()
        if pooling not in POOLING_MODES:
            raise ValueError(f"pooling must be one of {POOLING_MODES}, got {pooling!r}")
        self.encoder = encoder
        # transformers' PretrainedConfig (untyped): hidden size, positions, vocabulary, pad id.
        self.encoder_config: Any = encoder.config
        self.pooling: Pooling = pooling
        self.normalize = normalize

    @property
    def embedding_dim(self) -> int:
        """Size of the output vectors (the encoder's hidden size)."""
        return int(self.encoder_config.hidden_size)

    @property
    def max_positions(self) -> int:
        """Longest sequence the encoder's position embeddings allow."""
        config = self.encoder_config
        limit = int(config.max_position_embeddings)
        # RoBERTa / XLM-R number positions from padding_idx + 1, so two rows of the table are unusable.
        if config.model_type in {"roberta", "xlm-roberta", "camembert"}:
            limit -= int(config.pad_token_id) + 1
        return limit

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Embed a padded batch: ids and mask (batch, seq) int64 -> (batch, dim) float32."""
        output = self.encoder(input_ids=input_ids, attention_mask=attention_mask)
        hidden: torch.Tensor = output.last_hidden_state  # (batch, seq, dim)
        pooled = pool(hidden, attention_mask, self.pooling)  # (batch, dim)
        if self.normalize:
            pooled = nn.functional.normalize(pooled, p=2.0, dim=-1)
        return pooled


def load_dual_encoder(model_dir: Path, pooling: Pooling = "mean", normalize: bool = True) -> DualEncoder:
    """Load a transformers encoder folder as a ``DualEncoder`` in eval mode, float32, eager attention.

    Eager attention exports to the leanest plain-ONNX graph (SDPA adds NaN guards for fully
    masked rows that the pooling never reads).
    """
    encoder = AutoModel.from_pretrained(Path(model_dir), attn_implementation="eager", dtype=torch.float32)
    module = DualEncoder(encoder, pooling=pooling, normalize=normalize)
    module.eval()
    return module


def export_dual_encoder(module: DualEncoder, path: Path, opset: int = DEFAULT_OPSET) -> Path:
    """Write ``module`` as one self-contained ONNX file (weights inside, so < 2 GB) and check its interface."""
    example = example_batch(int(module.encoder_config.vocab_size), first_id=5)
    outputs = (SENTENCE_EMBEDDING,)
    export_onnx(module, path, example, outputs=outputs, max_positions=module.max_positions, opset=opset)
    check_interface(path, module.embedding_dim, opset, {SENTENCE_EMBEDDING: 2})
    return Path(path)


class DualEncoderFamily:
    """The family plug-in of ``export/family.py`` for ``ExportConfig`` and ``DualEncoder``."""

    name: Family = "dual-encoder"
    outputs: tuple[str, ...] = (SENTENCE_EMBEDDING,)

    def load(self, config: ExportConfig) -> DualEncoder:
        """The encoder folder with the config's pooling and normalisation."""
        return load_dual_encoder(Path(config.model_dir), config.pooling, config.normalize)

    def serving(self, config: ExportConfig, model: DualEncoder) -> Serving:
        """Pooling, normalisation, prefix and Matryoshka sizes as configured; the sizes must fit the model."""
        too_big = [d for d in config.allowed_dimensions if not 0 < d <= model.embedding_dim]
        if too_big:
            raise ValueError(f"allowed_dimensions {too_big} are not in 1..{model.embedding_dim}")
        return Serving(
            embedding_dim=model.embedding_dim,
            max_seq_length=config.fitted_length(model.max_positions),
            pooling=config.pooling,
            normalize=config.normalize,
            text_prefix=config.text_prefix,
            allowed_dimensions=config.allowed_dimensions,
            text_prefixes=config.text_prefixes,
        )

    def stage(self, config: ExportConfig, model: DualEncoder, staging: Path) -> Staged:
        """fp32 and the requested derived variants (int8, fp16)."""
        fp32 = staging / VARIANT_FILES["fp32"]
        with step(f"exporting fp32 ONNX (opset {config.opset})"):
            export_dual_encoder(model, fp32, opset=config.opset)
        variants = {"fp32": fp32}
        if "int8" in config.variants:
            with step("quantising to int8"):
                variants["int8"] = quantize_int8(
                    fp32,
                    staging / VARIANT_FILES["int8"],
                    quantize_embeddings=config.quantize_embeddings,
                    calibration=calibration(config, model),
                )
        if "fp16" in config.variants:
            with step("converting to fp16"):
                variants["fp16"] = convert_fp16(fp32, staging / VARIANT_FILES["fp16"])
        return Staged(variants)

    def forward(self, model: DualEncoder, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Outputs:
        """The sentence embeddings (batch, dim)."""
        return {SENTENCE_EMBEDDING: model(input_ids, attention_mask).numpy().astype(np.float32)}

    def rows(self, outputs: Outputs, attention_mask: IntArray, width: int) -> Outputs:  # noqa: ARG002 - protocol
        """One row per text already: padding is pooled away inside the graph."""
        return outputs

    def measure(self, config: ExportConfig, variants: Mapping[str, Path], tokenizer: Path, dim: int) -> Evaluation:
        """Tatoeba and BUCC of the staged variants, when their folders are set (``export/evaluation.py``), and how
        the int8 variant was quantised (``export/int8_selection.py``)."""
        recipe = quantization_evaluation(variants["int8"]) if "int8" in variants else {}
        return {**measure(config, variants, tokenizer, dim), **recipe}


def calibration(config: ExportConfig, model: DualEncoder) -> Calibration:
    """The packaged calibration texts, tokenised as the service will tokenise them for this export."""
    tokenizer = TextTokenizer(config.tokenizer_path, config.fitted_length(model.max_positions), config.text_prefix)
    return Calibration(load_calibration_texts(), tokenizer)


DUAL_ENCODER = DualEncoderFamily()
