"""What onnxruntime makes of the exported graphs: no ``SkipLayerNormalization`` (``export/onnx_graph.py``)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import onnx
import onnxruntime as ort
import pytest
from tiny_models import Exported

from xalign.export.onnx_graph import drop_intermediate_shapes


def optimised_ops(model: Path, tmp_path: Path) -> Counter[str]:
    """Op types of the graph onnxruntime's CPU session runs after all its optimisations."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.optimized_model_filepath = str(tmp_path / f"optimised-{model.name}")
    ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    return Counter(node.op_type for node in onnx.load(options.optimized_model_filepath).graph.node)


@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_exported_graphs_record_no_intermediate_shapes(exported: Exported, variant: str) -> None:
    graph = onnx.load(str(getattr(exported, variant))).graph
    assert len(graph.value_info) == 0
    assert [d.dim_param for d in graph.input[0].type.tensor_type.shape.dim] == ["batch", "sequence"]


@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_onnxruntime_keeps_layer_norm_unfused(exported: Exported, variant: str, tmp_path: Path) -> None:
    ops = optimised_ops(getattr(exported, variant), tmp_path)
    assert ops["SkipLayerNormalization"] == 0
    assert ops["LayerNormalization"] > 0


def test_recorded_shapes_would_fuse_skip_layer_norm(exported: Exported, tmp_path: Path) -> None:
    """The control: with the shapes onnx infers put back, onnxruntime fuses, so the test above can fail."""
    inferred = onnx.shape_inference.infer_shapes(onnx.load(str(exported.fp32)), data_prop=True)
    assert len(inferred.graph.value_info) > 0
    with_shapes = tmp_path / "with-shapes.onnx"
    onnx.save(inferred, str(with_shapes))
    assert optimised_ops(with_shapes, tmp_path)["SkipLayerNormalization"] > 0
    assert len(onnx.load(str(drop_intermediate_shapes(with_shapes))).graph.value_info) == 0
