"""Shared fixtures: the tiny model built and exported once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_models import MAX_LEN, Exported

from xalign.export.dual_encoder import DUAL_ENCODER, export_dual_encoder, load_dual_encoder
from xalign.export.fp16 import convert_fp16
from xalign.export.parity import ParityResult, check_parity
from xalign.export.parity_texts import load_parity_texts
from xalign.export.quantize import quantize_int8
from xalign.runtime.tokenization import TextTokenizer


@pytest.fixture(scope="session")
def exported(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Exported:
    out = tmp_path_factory.mktemp("onnx")
    module = load_dual_encoder(tiny_model_dir, "mean", normalize=True)
    fp32 = export_dual_encoder(module, out / "model.onnx")
    return Exported(
        module=module,
        fp32=fp32,
        int8=quantize_int8(fp32, out / "model.int8.onnx"),
        fp16=convert_fp16(fp32, out / "model.fp16.onnx"),
    )


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_model_dir: Path) -> TextTokenizer:
    return TextTokenizer(tiny_model_dir / "tokenizer.json", MAX_LEN)


@pytest.fixture(scope="session")
def parity_result(exported: Exported, tiny_tokenizer: TextTokenizer) -> ParityResult:
    variants = {"fp32": exported.fp32, "int8": exported.int8, "fp16": exported.fp16}
    return check_parity(DUAL_ENCODER, exported.module, variants, tiny_tokenizer, load_parity_texts())
