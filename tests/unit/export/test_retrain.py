"""``xalign-export retrain`` on the tiny model: train, publish the next version with the old serving contract,
release it through the gate (refused when it cannot be compared, promoted with ``--force``), and publish
nothing more when run again."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from retrain_recipe import DATA, write_recipe

from xalign.export.cli import _in_data_root, main
from xalign.export.retrain import measured_langs
from xalign.modelstore import Manifest, ModelStore
from xalign.modelstore.integrity import sha256_file
from xalign.modelstore.refs import ModelRef


@pytest.fixture
def store(tiny_store: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "store"
    shutil.copytree(tiny_store, copy)
    return copy


def _retrain(recipe: Path, store: Path, *extra: str) -> int:
    args = ["retrain", str(recipe), "--store", str(store), "--name", "tiny", "--variants", "fp32", "--no-progress"]
    return main([*args, *extra])


def test_publishes_the_next_version_with_the_serving_contract_and_provenance(
    tiny_model_dir: Path, store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = write_recipe(tmp_path, tiny_model_dir)
    # Neither version carries an evaluation the gate can compare: published, not promoted, exit 1.
    assert _retrain(recipe, store) == 1
    err = capsys.readouterr().err
    assert "tiny:2 is not promoted" in err and "--tatoeba-dir" in err and "--force" in err
    models = ModelStore(store)
    old, new = (models.manifest(ModelRef("tiny", version=v)) for v in (1, 2))
    # The store served its latest (no alias) before: that version was pinned as production before publishing.
    assert models.aliases("tiny") == {"production": 1}
    # Served like the version it replaces (not with the recipe's training length of 24 tokens).
    assert (new.max_seq_length, new.text_prefix, new.languages) == (old.max_seq_length, old.text_prefix, old.languages)
    assert new.source.recipe == "tiny_retrain.toml" and new.source.steps == 2
    en = DATA / "multi30k" / "train.en"
    assert {f.sha256 for f in new.source.data_files} >= {sha256_file(en)}
    assert new.parity["fp32"].min_cosine > 0.9999
    assert any(line.startswith("training data Multi30k") for line in new.licenses)
    # Again, forced: the run is complete and the checkpoint unchanged, so nothing new is published; promoted.
    assert _retrain(recipe, store, "--force", "--actor", "trainer-job") == 0
    assert "tiny:2 is production (forced)" in capsys.readouterr().out
    assert models.versions("tiny") == [1, 2] and models.aliases("tiny") == {"production": 2}
    assert [(e.action, e.to_version, e.gate) for e in models.history("tiny")] == [
        ("initial", 1, "initial"),
        ("force", 2, "not compared (forced)"),
    ]
    assert models.history("tiny")[-1].actor == "trainer-job"
    assert models.rollback("tiny") == 1


def test_no_promote_leaves_production_alone(tiny_model_dir: Path, store: Path, tmp_path: Path) -> None:
    ModelStore(store).promote("tiny", 1)
    assert _retrain(write_recipe(tmp_path, tiny_model_dir), store, "--no-promote") == 0
    assert ModelStore(store).versions("tiny") == [1, 2]
    assert ModelStore(store).aliases("tiny") == {"production": 1}


def test_bad_recipe_is_one_line_and_publishes_nothing(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = tmp_path / "bad.toml"
    recipe.write_text('base = "x"\nsteps = 0\n', encoding="utf-8")
    assert _retrain(recipe, store) == 1
    assert capsys.readouterr().err.startswith("xalign-export: error:")
    assert ModelStore(store).versions("tiny") == [1]


def test_the_gate_measures_on_the_data_root_and_production_languages(tmp_path: Path, tiny_manifest: Manifest) -> None:
    (tmp_path / "tatoeba").mkdir()
    assert _in_data_root(tmp_path, "tatoeba") == tmp_path / "tatoeba"
    assert _in_data_root(tmp_path, "bucc2018") is None and _in_data_root(None, "tatoeba") is None
    tatoeba = {"deu-eng": 1.0, "eng-deu": 1.0, "fra-eng": 1.0, "eng-fra": 1.0, "mean": 1.0}
    assert measured_langs(tiny_manifest.model_copy(update={"evaluation": {"tatoeba": tatoeba}})) == ("deu", "fra")
    assert measured_langs(tiny_manifest) == () and measured_langs(None) == ()
