"""The calibrated int8 variant: which FFN output projections stay fp32, and the record of how it was made."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
import torch
from tiny_models import MAX_LEN

from xalign.export.dual_encoder import DualEncoder, export_dual_encoder, load_dual_encoder
from xalign.export.int8_selection import (
    QUANTIZATION_KEY,
    Calibration,
    load_calibration_texts,
    quantization_evaluation,
)
from xalign.export.quantize import quantize_int8, weight_matmuls
from xalign.runtime.tokenization import TextTokenizer

OUTLIER = 200.0


def with_outlier_channel(module: DualEncoder, layer: int) -> DualEncoder:
    """Make one intermediate channel of ``layer`` ``OUTLIER`` times larger and the FFN output read it that much
    smaller: one uint8 scale for the whole FFN output input then leaves the other channels a few levels."""
    ffn = module.encoder.encoder.layer[layer]
    with torch.no_grad():
        ffn.intermediate.dense.weight[0] *= OUTLIER  # (intermediate, hidden): row 0 -> channel 0
        ffn.intermediate.dense.bias[0] = OUTLIER
        ffn.output.dense.weight[:, 0] /= OUTLIER  # (hidden, intermediate): column 0 reads channel 0
    return module


@pytest.fixture(scope="module")
def calibrated(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    out = tmp_path_factory.mktemp("calibrated")
    fp32 = export_dual_encoder(with_outlier_channel(load_dual_encoder(tiny_model_dir), layer=0), out / "model.onnx")
    tokenizer = TextTokenizer(tiny_model_dir / "tokenizer.json", MAX_LEN)
    int8 = quantize_int8(fp32, out / "model.int8.onnx", calibration=Calibration(load_calibration_texts(), tokenizer))
    props = {entry.key: entry.value for entry in onnx.load(str(int8)).metadata_props}
    return int8, json.loads(props[QUANTIZATION_KEY])


def test_the_outlier_layer_stays_fp32(calibrated: tuple[Path, dict[str, object]]) -> None:
    _, recipe = calibrated
    calibration = recipe["calibration"]
    assert isinstance(calibration, dict)
    added = {int(layer): value for layer, value in calibration["added_distance"].items()}
    print(f"base {calibration['base_distance']:.3g}, added {added}")
    assert set(added) == {0, 1}
    assert added[0] > calibration["base_distance"]  # quantising it more than doubles the distance
    assert 0 in recipe["kept_fp32"] and 0 not in calibration["quantised"]


def test_graph_matches_the_recorded_choice(calibrated: tuple[Path, dict[str, object]]) -> None:
    int8, recipe = calibrated
    model = onnx.load(str(int8))
    fp32_matmuls = {node.name for node in model.graph.node if node.op_type == "MatMul"}
    # weight_matmuls reads the fp32 MatMuls only; of the FFN output projections, the kept ones are still there.
    kept = {layer for _, role, layer in weight_matmuls(model) if role == "ffn_out"}
    assert kept == set(recipe["kept_fp32"])  # type: ignore[arg-type]
    assert len([name for name, _, _ in weight_matmuls(model)]) == len(kept)
    assert fp32_matmuls  # the attention products (activation x activation) stay float
    assert len(model.graph.value_info) == 0  # shapes dropped after the last quantisation step


def test_manifest_entry_summarises_the_recipe(calibrated: tuple[Path, dict[str, object]]) -> None:
    int8, recipe = calibrated
    entry = quantization_evaluation(int8)["int8-quantization"]
    assert entry["ffn_out_fp32_layers"] == len(recipe["kept_fp32"])  # type: ignore[arg-type]
    assert entry["calibration_texts"] == len(load_calibration_texts())
    assert entry["ffn_out_added_distance_layer_0"] > entry["base_distance"]
