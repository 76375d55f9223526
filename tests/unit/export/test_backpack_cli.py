"""``xalign-export backpack``: a Backpack checkpoint folder published with the provenance of its training manifest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny_backpack import build_backpack_dir

from xalign.export.cli import main
from xalign.modelstore import ModelStore
from xalign.modelstore.refs import ModelRef
from xalign.training.backpack_training.manifest import BackpackRunManifest, write_manifest
from xalign.training.data.corpus import describe_corpus

LINES = Path(__file__).resolve().parents[2] / "data" / "backpack" / "lines.txt"


@pytest.fixture(scope="module")
def trained_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Backpack with a training manifest as the trainer writes it."""
    folder = build_backpack_dir(tmp_path_factory.mktemp("backpack"), seed=0)
    corpus = describe_corpus("lines", [LINES], LINES.parent)
    manifest = BackpackRunManifest(
        name="tiny_sensia", step=7, steps=7, recipe={}, recipe_file="tiny_sensia.toml", recipe_text="",
        data=[corpus], tokenizer_sha256="0" * 64,
    )  # fmt: skip
    write_manifest(folder, manifest)
    return folder


def test_publishes_with_the_training_provenance(trained_dir: Path, tmp_path: Path) -> None:
    store, evaluation = tmp_path / "store", tmp_path / "eval.json"
    evaluation.write_text(json.dumps({"multi30k-val-de": {"perplexity": 123.4}}), encoding="utf-8")
    args = ["backpack", "--model-dir", str(trained_dir), "--store", str(store), "--name", "bp"]
    args += ["--languages", "en", "de", "--licenses", "CC-BY-NC-4.0", "--evaluation", str(evaluation)]
    assert main(args) == 0
    manifest = ModelStore(store).manifest(ModelRef("bp"))
    assert manifest.family == "backpack" and manifest.languages == ["en", "de"]
    assert manifest.source.recipe == "tiny_sensia.toml" and manifest.source.steps == 7
    assert [f.path for f in manifest.source.data_files] == ["lines.txt"]
    assert manifest.evaluation["multi30k-val-de"]["perplexity"] == pytest.approx(123.4)
    assert set(manifest.files) == {"model.onnx", "senses.npz", "tokenizer.json"}
    assert manifest.licenses == ["CC-BY-NC-4.0", "training data lines.txt: licence not recorded"]
    assert main(args) == 0  # the same inputs: nothing new
    assert ModelStore(store).versions("bp") == [1]


def test_a_folder_that_is_not_a_backpack_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backpack", "--model-dir", str(tmp_path), "--store", str(tmp_path / "s")]) == 1
    assert capsys.readouterr().err.startswith("xalign-export: error:")
