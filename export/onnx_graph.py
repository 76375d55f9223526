"""Writing a torch module as one self-contained ONNX file, and checking the interface every family shares.

Exporter: ``torch.onnx.export(..., dynamo=True)`` (the ``torch.export`` based exporter, the default since
torch 2.9). It captures the symbolic batch and sequence sizes with guards, so a shape that would be baked into
the graph fails the export instead of producing a wrong graph; the legacy TorchScript tracer (``dynamo=False``,
deprecated in torch 2.13) also gives a correct graph today but only by luck, with TracerWarnings about Python
booleans in transformers' mask code being frozen into constants.

The exporter records the shape of every intermediate tensor (``graph.value_info``), and with those shapes
onnxruntime fuses each layer's bias Add, residual Add and ``LayerNormalization`` into ``SkipLayerNormalization``,
whose CPU kernel is slower than the three ops it replaces: on multilingual-e5-small, onnxruntime 1.32, the graph
without the recorded shapes runs 1.09-1.10x as fast (1 thread, CPU and wall time), as fast as the TorchScript
export of the same weights, whose shapes were never recorded (``benchmarks/results/graph_variants.md``).
So ``export_onnx`` drops them (``drop_intermediate_shapes``); onnxruntime infers what its other fusions need.

Every graph takes ``input_ids`` and ``attention_mask`` (int64, (batch, seq), right padding, both axes dynamic)
and gives float32 outputs, the first of them ``sentence_embedding`` (batch, dim); the names are the artifact
contract's (``modelstore/artifacts.py``).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import onnx
import torch
from torch import nn

from xalign.modelstore.artifacts import INPUT_NAMES, SENTENCE_EMBEDDING

log = logging.getLogger(__name__)

# The torch.export based exporter emits opset 18 and newer; it cannot convert a graph down to 17
# (the ONNX version converter fails and silently leaves 18), so 18 is the floor.
DEFAULT_OPSET = 18
MIN_OPSET = 18


def check_opset(opset: int) -> None:
    """Raise ``ValueError`` for an opset the exporter cannot produce."""
    if opset < MIN_OPSET:
        raise ValueError(f"opset must be at least {MIN_OPSET}, got {opset}")


def example_batch(vocab_size: int, first_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A padded example batch (2, 8) of ids from ``first_id`` up (special ids below it); sizes > 1 so
    torch.export keeps both axes symbolic."""
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(low=min(first_id, vocab_size - 1), high=vocab_size, size=(2, 8), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 5:] = 0  # the second row is padded, as in a real batch
    return input_ids, attention_mask


def export_onnx(
    module: nn.Module,
    path: Path,
    example: tuple[torch.Tensor, torch.Tensor],
    *,
    outputs: Sequence[str],
    max_positions: int,
    opset: int = DEFAULT_OPSET,
) -> Path:
    """Write ``module`` (ids and mask in, ``outputs`` out) as one ONNX file with the weights inside (< 2 GB)."""
    check_opset(opset)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    axes = {0: torch.export.Dim("batch"), 1: torch.export.Dim("sequence", max=max_positions)}
    module.eval()
    with warnings.catch_warnings():
        # The exporter notes that both inputs share the same axis names: that is the intent.
        warnings.filterwarnings("ignore", message=r"# The axis name")
        # torch.export's own pytree code trips its deprecation of LeafSpec; nothing we can act on.
        warnings.filterwarnings("ignore", message=r".*LeafSpec", category=FutureWarning)
        torch.onnx.export(
            module,
            example,
            str(path),
            input_names=list(INPUT_NAMES),
            output_names=list(outputs),
            opset_version=opset,
            dynamo=True,
            external_data=False,
            dynamic_shapes={INPUT_NAMES[0]: axes, INPUT_NAMES[1]: axes},
            verbose=False,
        )
    drop_intermediate_shapes(path)
    log.info("wrote %s (%.1f MB)", path, path.stat().st_size / 1e6)
    return path


def drop_intermediate_shapes(path: Path) -> Path:
    """Rewrite the ONNX file ``path`` without its intermediate shapes (``graph.value_info``).

    Inputs and outputs keep their types and shapes. Without the intermediate shapes onnxruntime does not
    fuse ``SkipLayerNormalization`` (module docstring); the computation is unchanged.
    """
    model = onnx.load(str(path))
    del model.graph.value_info[:]
    onnx.save(model, str(path))
    return Path(path)


def check_interface(path: Path, dim: int, opset: int, output_ranks: Mapping[str, int]) -> None:
    """Raise ``ValueError`` unless the graph has ``opset``, the int64 inputs with dynamic axes, a float32
    output of each rank in ``output_ranks`` and ``sentence_embedding`` of shape (batch, ``dim``)."""
    onnx.checker.check_model(str(path))
    model = onnx.load(str(path), load_external_data=False)
    found = {entry.version for entry in model.opset_import if entry.domain in {"", "ai.onnx"}}
    if found != {opset}:
        raise ValueError(f"{path}: exported with opset {sorted(found)}, asked for {opset}")
    inputs = {value.name: value.type.tensor_type for value in model.graph.input}
    outputs = {value.name: value.type.tensor_type for value in model.graph.output}
    if set(inputs) != set(INPUT_NAMES) or not set(output_ranks) <= set(outputs):
        raise ValueError(f"{path}: inputs {sorted(inputs)} / outputs {sorted(outputs)} are not the interface")
    for name in INPUT_NAMES:
        dims = inputs[name].shape.dim
        if inputs[name].elem_type != onnx.TensorProto.INT64 or any(d.dim_param == "" for d in dims):
            raise ValueError(f"{path}: input {name} must be int64 with dynamic batch and sequence axes")
    for name, rank in output_ranks.items():
        if outputs[name].elem_type != onnx.TensorProto.FLOAT or len(outputs[name].shape.dim) != rank:
            raise ValueError(f"{path}: output {name} must be float32 of rank {rank}")
    embedding = [d.dim_value or d.dim_param for d in outputs[SENTENCE_EMBEDDING].shape.dim]
    if embedding[1:] != [dim]:
        raise ValueError(f"{path}: output {SENTENCE_EMBEDDING} must be float32 [batch, {dim}], is {embedding}")
