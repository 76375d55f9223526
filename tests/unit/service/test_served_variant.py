"""Which ONNX variant a version is served in: ``auto`` is int8 on CPU and fp16 on a GPU where published, else fp32."""

from __future__ import annotations

import pytest

from xalign.modelstore import Manifest
from xalign.service.loaded_model import served_variant
from xalign.service.settings import Settings


def test_auto_is_int8_on_cpu_and_fp32_on_a_gpu(tiny_manifest: Manifest) -> None:
    assert set(tiny_manifest.onnx.variants) >= {"fp32", "int8"}
    assert served_variant(tiny_manifest, "auto") == "int8"
    assert served_variant(tiny_manifest, "auto", on_gpu=True) == "fp32"  # the tiny store has no fp16


def test_auto_is_fp16_on_a_gpu_where_published_and_never_on_a_cpu(tiny_manifest: Manifest) -> None:
    variants = {**tiny_manifest.onnx.variants, "fp16": "model.fp16.onnx"}
    with_fp16 = tiny_manifest.model_copy(update={"onnx": tiny_manifest.onnx.model_copy(update={"variants": variants})})
    assert served_variant(with_fp16, "auto", on_gpu=True) == "fp16"
    assert served_variant(with_fp16, "auto") == "int8"


def test_auto_falls_back_to_fp32_without_an_int8_variant(tiny_manifest: Manifest) -> None:
    fp32_only = tiny_manifest.model_copy(
        update={"onnx": tiny_manifest.onnx.model_copy(update={"variants": {"fp32": "model.onnx"}})}
    )
    assert served_variant(fp32_only, "auto") == "fp32"
    assert served_variant(fp32_only, "int8") == "fp32"


def test_a_named_variant_is_served_as_asked(tiny_manifest: Manifest) -> None:
    assert served_variant(tiny_manifest, "fp32") == "fp32"
    assert served_variant(tiny_manifest, "int8") == "int8"


def test_the_default_setting_is_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    # The test session pins XALIGN_VARIANT=fp32 (tests/conftest.py); without it the default is auto.
    monkeypatch.delenv("XALIGN_VARIANT", raising=False)
    assert Settings().variant == "auto"
