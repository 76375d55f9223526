"""The exported graph against PyTorch: interface, dynamic shapes, parity per variant, pooling."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from tiny_models import HIDDEN, Exported

from xalign.export.dual_encoder import DUAL_ENCODER, DualEncoder, export_dual_encoder
from xalign.export.family import FloatArray
from xalign.export.parity import FP32_MIN_COSINE, ParityResult, open_session, run_onnx, run_torch
from xalign.export.quantize import weight_matmuls
from xalign.runtime.tokenization import Batch, TextTokenizer
from xalign.training.models.pooling import pool


def test_interface_is_dynamic_int64_in_float32_out(exported: Exported) -> None:
    model = onnx.load(str(exported.fp32))
    assert [(o.domain, o.version) for o in model.opset_import if o.domain == ""] == [("", 18)]
    inputs = {i.name: i.type.tensor_type for i in model.graph.input}
    assert set(inputs) == {"input_ids", "attention_mask"}
    for tensor in inputs.values():
        assert tensor.elem_type == onnx.TensorProto.INT64
        assert [d.dim_param for d in tensor.shape.dim] == ["batch", "sequence"]
    (output,) = model.graph.output
    assert output.name == "sentence_embedding"
    assert output.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [d.dim_value or d.dim_param for d in output.type.tensor_type.shape.dim] == ["batch", HIDDEN]


@pytest.mark.parametrize(("batch", "length"), [(1, 3), (5, 3), (1, 40), (5, 40)])
def test_dynamic_batch_and_sequence(exported: Exported, batch: int, length: int) -> None:
    generator = torch.Generator().manual_seed(batch * 100 + length)
    input_ids = torch.randint(4, 120, (batch, length), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    if batch > 1:
        attention_mask[1:, length // 2 + 1 :] = 0  # every row but the first is padded
        input_ids[attention_mask == 0] = 0
    session = open_session(exported.fp32)
    feed = {"input_ids": input_ids.numpy(), "attention_mask": attention_mask.numpy()}
    (onnx_out,) = session.run(None, feed)
    with torch.inference_mode():
        torch_out = exported.module(input_ids, attention_mask).numpy()
    assert onnx_out.shape == (batch, HIDDEN)
    assert onnx_out.dtype == np.float32
    np.testing.assert_allclose(onnx_out, torch_out, atol=1e-5)


def test_fp32_parity_on_packaged_texts(
    parity_result: ParityResult, record_property: Callable[[str, object], None]
) -> None:
    report = parity_result.reports["fp32"]
    record_property("fp32_min_cosine", report.min_cosine)
    record_property("fp32_max_abs_diff", report.max_abs_diff)
    print(f"fp32: min cosine {report.min_cosine:.8f}, max abs diff {report.max_abs_diff:.3g}")
    assert report.texts == parity_result.texts >= 200
    assert report.min_cosine >= FP32_MIN_COSINE
    assert report.max_abs_diff < 1e-4
    assert parity_result.truncated > 0  # the over-long texts really were cut to 64 tokens


def _embedding(outputs: dict[str, FloatArray]) -> FloatArray:
    return outputs["sentence_embedding"]  # (batch, dim)


def test_batch_vs_single(parity_result: ParityResult, exported: Exported, tiny_tokenizer: TextTokenizer) -> None:
    assert parity_result.batch_vs_single["fp32"] <= 1e-5
    session = open_session(exported.fp32)
    short, long = "a", "a much longer sentence that forces padding onto the short one " * 3
    alone = _embedding(run_onnx(session, tiny_tokenizer([short]), DUAL_ENCODER.outputs))
    batch: Batch = tiny_tokenizer([long, short, long])
    assert batch.attention_mask[1].sum() < batch.attention_mask.shape[1]
    np.testing.assert_allclose(_embedding(run_onnx(session, batch, DUAL_ENCODER.outputs))[1], alone[0], atol=1e-5)
    np.testing.assert_allclose(_embedding(run_torch(DUAL_ENCODER, exported.module, batch))[1], alone[0], atol=1e-5)


def test_int8_runs_and_is_close(parity_result: ParityResult) -> None:
    report = parity_result.reports["int8"]
    print(
        f"int8: min cosine {report.min_cosine:.6f}, max abs diff {report.max_abs_diff:.3g}, "
        f"batch-vs-single {parity_result.batch_vs_single['int8']:.3g}"
    )
    # Random weights quantise gently (0.99997 measured); real models lose more, hence the margin.
    assert report.min_cosine >= 0.999


def test_int8_keeps_ffn_output_projections_fp32(exported: Exported) -> None:
    roles = weight_matmuls(onnx.load(str(exported.fp32)))
    assert {role for _, role, _ in roles} == {"qkv", "attn_out", "ffn_in", "ffn_out"}
    ffn_out = {name for name, role, _ in roles if role == "ffn_out"}
    assert len(ffn_out) == max(layer for _, _, layer in roles) + 1  # one per layer
    int8 = onnx.load(str(exported.int8))
    float_matmuls = {n.name for n in int8.graph.node if n.op_type == "MatMul"}
    assert ffn_out <= float_matmuls
    assert {name for name, role, _ in roles if role != "ffn_out"}.isdisjoint(float_matmuls)


def test_fp16_runs_on_cpu_and_is_close(parity_result: ParityResult) -> None:
    report = parity_result.reports["fp16"]
    print(f"fp16: min cosine {report.min_cosine:.6f}, max abs diff {report.max_abs_diff:.3g}")
    assert report.min_cosine >= 0.999


def test_opset_below_18_is_refused(exported: Exported, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="opset"):
        export_dual_encoder(exported.module, tmp_path / "m.onnx", opset=17)


def _hidden_and_mask() -> tuple[torch.Tensor, torch.Tensor]:
    hidden = torch.arange(2 * 4 * 3, dtype=torch.float32).view(2, 4, 3)  # [batch 2, seq 4, dim 3]
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    return hidden, mask


def test_pooling_modes_ignore_padding() -> None:
    hidden, mask = _hidden_and_mask()
    torch.testing.assert_close(pool(hidden, mask, "cls"), hidden[:, 0])
    torch.testing.assert_close(pool(hidden, mask, "last"), torch.stack([hidden[0, 3], hidden[1, 1]]))
    torch.testing.assert_close(pool(hidden, mask, "mean"), torch.stack([hidden[0].mean(0), hidden[1, :2].mean(0)]))


def test_normalize_switch(exported: Exported) -> None:
    raw = DualEncoder(exported.module.encoder, pooling="cls", normalize=False)
    unit = DualEncoder(exported.module.encoder, pooling="cls", normalize=True)
    ids = torch.tensor([[2, 10, 12, 3]])
    mask = torch.ones_like(ids)
    with torch.inference_mode():
        raw_out, unit_out = raw(ids, mask), unit(ids, mask)
    assert abs(float(unit_out.norm()) - 1.0) < 1e-6
    assert abs(float(raw_out.norm()) - 1.0) > 1e-3
    torch.testing.assert_close(unit_out, raw_out / raw_out.norm())


def test_unknown_pooling_is_refused(exported: Exported) -> None:
    with pytest.raises(ValueError, match="pooling"):
        DualEncoder(exported.module.encoder, pooling="max")  # type: ignore[arg-type]
