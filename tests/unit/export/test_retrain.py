"""``xalign-export retrain`` on the tiny model: train, publish the next version with the old serving contract,
promote it, and publish nothing more when run again."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from export.cli import main
from modelstore import ModelStore
from modelstore.integrity import sha256_file
from modelstore.refs import ModelRef

REPO = Path(__file__).resolve().parents[3]
DATA = REPO / "tests" / "data" / "trainer"


def write_recipe(folder: Path, base: Path, steps: int = 2) -> Path:
    """A tiny En-X recipe over 16 Multi30k en-de rows; output in ``folder/run``."""
    recipe = folder / "tiny_retrain.toml"
    recipe.write_text(
        f'base = "{base}"\noutput = "{folder / "run"}"\ndata_root = "{DATA}"\n'
        f"steps = {steps}\nbatch_size = 4\nlr = 1e-3\nmax_seq_length = 24\n"
        'device = "cpu"\n\n[[objectives]]\nname = "translation_ranking"\n\n'
        '[[data]]\nkind = "multi30k"\npath = "multi30k"\nsplit = "train"\nlangs = ["en", "de"]\nmax_rows = 16\n',
        encoding="utf-8",
    )
    return recipe


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
    assert _retrain(recipe, store) == 0
    assert "tiny:2 is production" in capsys.readouterr().out
    models = ModelStore(store)
    old, new = (models.manifest(ModelRef("tiny", version=v)) for v in (1, 2))
    assert models.aliases("tiny") == {"production": 2}
    # Served like the version it replaces (not with the recipe's training length of 24 tokens).
    assert (new.max_seq_length, new.text_prefix, new.languages) == (old.max_seq_length, old.text_prefix, old.languages)
    assert new.source.recipe == "tiny_retrain.toml" and new.source.steps == 2
    en = DATA / "multi30k" / "train.en"
    assert {f.sha256 for f in new.source.data_files} >= {sha256_file(en)}
    assert new.parity["fp32"].min_cosine > 0.9999
    assert any(line.startswith("training data Multi30k") for line in new.licenses)
    # Again: the run is complete and the checkpoint unchanged, so nothing new is published.
    assert _retrain(recipe, store) == 0
    assert models.versions("tiny") == [1, 2]
    # The store served its latest (no alias) before: that version became production first, so rollback works.
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
