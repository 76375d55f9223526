"""The dual-encoder graph: a Hugging Face encoder, pooling and optional L2 normalisation in one module.

``DualEncoder`` is what gets exported, so the ONNX file computes exactly what PyTorch
computes: inputs ``input_ids`` and ``attention_mask`` (int64, ``[batch, sequence]``),
output ``sentence_embedding`` (float32, ``[batch, dim]``).

Exporter: ``torch.onnx.export(..., dynamo=True)`` (the ``torch.export`` based exporter,
the default since torch 2.9). It captures the symbolic batch and sequence sizes with
guards, so a shape that would be baked into the graph fails the export instead of
producing a wrong graph; the legacy TorchScript tracer (``dynamo=False``, deprecated in
torch 2.13) also gives a correct graph today but only by luck, with TracerWarnings about
Python booleans in transformers' mask code being frozen into constants.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any, Literal, get_args

import onnx
import torch
from torch import nn
from transformers import AutoModel

log = logging.getLogger(__name__)

PoolingMode = Literal["mean", "cls", "last"]
POOLING_MODES: tuple[str, ...] = get_args(PoolingMode)

INPUT_NAMES: tuple[str, str] = ("input_ids", "attention_mask")
OUTPUT_NAME = "sentence_embedding"
# The torch.export based exporter emits opset 18 and newer; it cannot convert this graph down to 17
# (the ONNX version converter fails and silently leaves 18), so 18 is the floor.
DEFAULT_OPSET = 18
MIN_OPSET = 18


class DualEncoder(nn.Module):
    """Encoder + pooling (+ L2 normalisation) mapping token ids to one vector per text."""

    def __init__(self, encoder: nn.Module, pooling: PoolingMode = "mean", normalize: bool = True) -> None:
        super().__init__()
        if pooling not in POOLING_MODES:
            raise ValueError(f"pooling must be one of {POOLING_MODES}, got {pooling!r}")
        self.encoder = encoder
        # transformers' PretrainedConfig (untyped): hidden size, positions, vocabulary, pad id.
        self.encoder_config: Any = encoder.config
        self.pooling: PoolingMode = pooling
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

    @property
    def pad_id(self) -> int:
        """Token id used for padding (0 when the config names none, as in BERT)."""
        pad = self.encoder_config.pad_token_id
        return 0 if pad is None else int(pad)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Embed a padded batch: ids and mask ``[batch, seq]`` int64 → ``[batch, dim]`` float32."""
        output = self.encoder(input_ids=input_ids, attention_mask=attention_mask)
        hidden: torch.Tensor = output.last_hidden_state  # [batch, seq, dim]
        pooled = pool(hidden, attention_mask, self.pooling)  # [batch, dim]
        if self.normalize:
            pooled = nn.functional.normalize(pooled, p=2.0, dim=-1)
        return pooled


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: PoolingMode) -> torch.Tensor:
    """Reduce token states ``[batch, seq, dim]`` to ``[batch, dim]``; padded positions never contribute."""
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "last":
        # Right padding: the last real token sits at length - 1.
        last = attention_mask.sum(dim=1) - 1  # [batch]
        index = last.clamp(min=0).view(-1, 1, 1).expand(-1, 1, hidden.shape[-1])  # [batch, 1, dim]
        return hidden.gather(1, index).squeeze(1)
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # [batch, seq, 1]
    summed = (hidden * mask).sum(dim=1)  # [batch, dim]
    # An all-padding row would divide by zero; clamping keeps it finite (and zero).
    counts = mask.sum(dim=1).clamp(min=1e-9)  # [batch, 1]
    return summed / counts


def load_dual_encoder(model_dir: Path, pooling: PoolingMode = "mean", normalize: bool = True) -> DualEncoder:
    """Load a transformers encoder folder as a ``DualEncoder`` in eval mode, float32, eager attention.

    Eager attention exports to the leanest plain-ONNX graph (SDPA adds NaN guards for fully
    masked rows that the pooling never reads).
    """
    encoder = AutoModel.from_pretrained(Path(model_dir), attn_implementation="eager", dtype=torch.float32)
    module = DualEncoder(encoder, pooling=pooling, normalize=normalize)
    module.eval()
    return module


def example_inputs(module: DualEncoder) -> tuple[torch.Tensor, torch.Tensor]:
    """A padded example batch ``[2, 8]`` for tracing; sizes > 1 so torch.export keeps both axes symbolic."""
    vocab = int(module.encoder_config.vocab_size)
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(low=min(5, vocab - 1), high=vocab, size=(2, 8), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 5:] = 0  # the second row is padded, as in a real batch
    return input_ids, attention_mask


def export_dual_encoder(module: DualEncoder, path: Path, opset: int = DEFAULT_OPSET) -> Path:
    """Write ``module`` as one self-contained ONNX file (weights inside, so < 2 GB) and check its interface."""
    if opset < MIN_OPSET:
        raise ValueError(f"opset must be at least {MIN_OPSET}, got {opset}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    batch = torch.export.Dim("batch")
    sequence = torch.export.Dim("sequence", max=module.max_positions)
    axes = {0: batch, 1: sequence}
    module.eval()
    with warnings.catch_warnings():
        # The exporter notes that both inputs share the same axis names: that is the intent.
        warnings.filterwarnings("ignore", message=r"# The axis name")
        # torch.export's own pytree code trips its deprecation of LeafSpec; nothing we can act on.
        warnings.filterwarnings("ignore", message=r".*LeafSpec", category=FutureWarning)
        torch.onnx.export(
            module,
            example_inputs(module),
            str(path),
            input_names=list(INPUT_NAMES),
            output_names=[OUTPUT_NAME],
            opset_version=opset,
            dynamo=True,
            external_data=False,
            dynamic_shapes={INPUT_NAMES[0]: axes, INPUT_NAMES[1]: axes},
            verbose=False,
        )
    check_interface(path, module.embedding_dim, opset)
    log.info("wrote %s (%.1f MB)", path, path.stat().st_size / 1e6)
    return path


def check_interface(path: Path, dim: int, opset: int) -> None:
    """Raise ``ValueError`` unless the graph has the opset and the dual-encoder interface with dynamic axes."""
    onnx.checker.check_model(str(path))
    model = onnx.load(str(path), load_external_data=False)
    found = {entry.version for entry in model.opset_import if entry.domain in {"", "ai.onnx"}}
    if found != {opset}:
        raise ValueError(f"{path}: exported with opset {sorted(found)}, asked for {opset}")
    graph = model.graph
    inputs = {value.name: value for value in graph.input}
    outputs = {value.name: value for value in graph.output}
    if set(inputs) != set(INPUT_NAMES) or OUTPUT_NAME not in outputs:
        raise ValueError(
            f"{path}: inputs {sorted(inputs)} / outputs {sorted(outputs)} are not the dual-encoder interface"
        )
    for name in INPUT_NAMES:
        dims = inputs[name].type.tensor_type.shape.dim
        if inputs[name].type.tensor_type.elem_type != onnx.TensorProto.INT64 or any(d.dim_param == "" for d in dims):
            raise ValueError(f"{path}: input {name} must be int64 with dynamic batch and sequence axes")
    out_type = outputs[OUTPUT_NAME].type.tensor_type
    out_dims = [d.dim_value or d.dim_param for d in out_type.shape.dim]
    if out_type.elem_type != onnx.TensorProto.FLOAT or len(out_dims) != 2 or out_dims[1] != dim:
        raise ValueError(f"{path}: output {OUTPUT_NAME} must be float32 [batch, {dim}], is {out_dims}")
