"""export_and_publish: a verified version with parity, idempotent reruns (also via the CLI), refusals."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from tiny_models import MAX_LEN, Exported

import xalign.export.dual_encoder
from xalign.export.cli import main
from xalign.export.dual_encoder import DUAL_ENCODER
from xalign.export.dual_encoder_config import ExportConfig
from xalign.export.fingerprint import fingerprint
from xalign.export.int8_selection import load_calibration_texts
from xalign.export.parity import ParityError
from xalign.export.pipeline import export_and_publish
from xalign.modelstore import InvalidNameError, Manifest, ModelStore
from xalign.modelstore.refs import ModelRef

EVALUATION = {"tatoeba": {"deu-eng": 0.5}}


def _config(model_dir: Path, store: Path, **overrides: object) -> ExportConfig:
    base = ExportConfig(
        model_dir=model_dir,
        store=store,
        name="tiny-e5",
        base_model="random tiny BERT",
        max_seq_length=MAX_LEN,
        text_prefix="query: ",
        languages=("en", "de"),
        evaluation=EVALUATION,
        licenses=("Apache-2.0",),
    )
    return dataclasses.replace(base, **overrides)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def published(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[ExportConfig, Manifest]:
    store = tmp_path_factory.mktemp("store")
    config = _config(tiny_model_dir, store, work_dir=tmp_path_factory.mktemp("work"))
    return config, export_and_publish(config, DUAL_ENCODER)


def test_publish_gives_a_verified_version_with_parity(published: tuple[ExportConfig, Manifest]) -> None:
    config, manifest = published
    loaded = ModelStore(config.store).load(ModelRef("tiny-e5"))  # verifies every sha256
    assert loaded.manifest == manifest
    assert manifest.version == 1
    assert manifest.family == "dual-encoder"
    assert manifest.embedding_dim == 32
    assert (manifest.pooling, manifest.normalize, manifest.max_seq_length) == ("mean", True, MAX_LEN)
    assert manifest.text_prefix == "query: "
    assert set(manifest.files) == {"model.onnx", "model.int8.onnx", "tokenizer.json"}
    assert manifest.onnx.variants == {"fp32": "model.onnx", "int8": "model.int8.onnx"}
    assert manifest.onnx.inputs == ["input_ids", "attention_mask"]
    assert manifest.onnx.outputs == ["sentence_embedding"]
    assert manifest.parity["fp32"].min_cosine >= 0.9999
    assert manifest.parity["fp32"].texts >= 200
    assert manifest.parity["int8"].min_cosine > 0.9
    # The given evaluation plus how int8 was made: the calibrated distance of each layer's FFN output projection.
    recipe = manifest.evaluation["int8-quantization"]
    assert {k: v for k, v in manifest.evaluation.items() if k != "int8-quantization"} == EVALUATION
    assert {k for k in recipe if k.startswith("ffn_out_added_distance_layer_")} == {
        "ffn_out_added_distance_layer_0",
        "ffn_out_added_distance_layer_1",
    }
    assert recipe["calibration_texts"] == len(load_calibration_texts()) and 0 <= recipe["ffn_out_fp32_layers"] <= 2
    assert manifest.source.fingerprint == fingerprint(config)
    assert list(Path(config.work_dir or "").iterdir()) == []  # the staging folder is gone


def test_published_tokenizer_truncates_and_does_not_pad(published: tuple[ExportConfig, Manifest]) -> None:
    config, _ = published
    saved = json.loads((config.store / "tiny-e5" / "1" / "tokenizer.json").read_text(encoding="utf-8"))
    assert saved["truncation"]["max_length"] == MAX_LEN
    assert saved["padding"] is None


def test_identical_rerun_through_the_cli_publishes_nothing(
    published: tuple[ExportConfig, Manifest], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config, manifest = published
    evaluation = tmp_path / "eval.json"
    evaluation.write_text(json.dumps(EVALUATION), encoding="utf-8")
    argv = ["onnx", "--model-dir", str(config.model_dir), "--store", str(config.store), "--name", "tiny-e5"]
    argv += ["--base-model", "random tiny BERT", "--max-seq-length", str(MAX_LEN), "--text-prefix", "query: "]
    argv += ["--languages", "en", "de", "--evaluation", str(evaluation), "--licenses", "Apache-2.0"]
    assert main(argv) == 0
    assert capsys.readouterr().out.startswith("tiny-e5:1 ")
    assert ModelStore(config.store).versions("tiny-e5") == [1]
    assert export_and_publish(config, DUAL_ENCODER) == manifest


def test_fingerprint_follows_settings_not_locations(published: tuple[ExportConfig, Manifest], tmp_path: Path) -> None:
    config, _ = published
    same = fingerprint(config)
    assert fingerprint(dataclasses.replace(config, store=tmp_path, work_dir=None)) == same
    for change in ({"pooling": "cls"}, {"normalize": False}, {"max_seq_length": 32}, {"variants": ("fp32",)}):
        assert fingerprint(dataclasses.replace(config, **change)) != same
    moved = shutil.copytree(config.model_dir, tmp_path / "moved")
    assert fingerprint(dataclasses.replace(config, model_dir=moved)) == same
    (moved / "config.json").write_text((moved / "config.json").read_text() + " ", encoding="utf-8")
    assert fingerprint(dataclasses.replace(config, model_dir=moved)) != same


def _other_model(source: Path, target: Path) -> None:
    """Same architecture, different (random) weights: what an ONNX file of another model looks like."""
    model = onnx.load(str(source))
    rng = np.random.default_rng(1)
    for init in model.graph.initializer:
        weights = numpy_helper.to_array(init)
        if weights.dtype == np.float32 and weights.size > 64:
            noisy = rng.normal(0.0, 0.02, weights.shape).astype(np.float32)
            init.CopyFrom(numpy_helper.from_array(noisy, init.name))
    onnx.save(model, str(target))


def test_parity_failure_raises_and_publishes_nothing(
    tiny_model_dir: Path, exported: Exported, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def wrong_export(module: object, path: Path, opset: int = 18) -> Path:
        _other_model(exported.fp32, path)
        return path

    monkeypatch.setattr(xalign.export.dual_encoder, "export_dual_encoder", wrong_export)
    config = _config(tiny_model_dir, tmp_path / "store", variants=("fp32",))
    with pytest.raises(ParityError, match=r"fp32 ONNX does not match PyTorch: min cosine"):
        export_and_publish(config, DUAL_ENCODER)
    assert ModelStore(config.store).models() == []


def test_config_is_validated(tiny_model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fp32"):
        _config(tiny_model_dir, tmp_path, variants=("int8",))
    with pytest.raises(ValueError, match="variants"):
        _config(tiny_model_dir, tmp_path, variants=("fp32", "int4"))
    with pytest.raises(ValueError, match="opset"):
        _config(tiny_model_dir, tmp_path, opset=17)
    with pytest.raises(InvalidNameError):
        _config(tiny_model_dir, tmp_path, name="../escape")


def test_too_long_max_seq_length_is_refused_before_export(tiny_model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="exceeds the model's 64 positions"):
        export_and_publish(_config(tiny_model_dir, tmp_path / "store", max_seq_length=512), DUAL_ENCODER)
