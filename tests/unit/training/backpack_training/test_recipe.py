"""Backpack recipes: a good one loads with paths resolved; bad values and combinations are refused by name."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from xalign.training.backpack_training.recipe import load_backpack_recipe, recipe_from_mapping
from xalign.training.recipes.base import RecipeError, recipe_to_dict

RECIPES = Path(__file__).resolve().parents[4] / "training" / "recipes" / "backpack"


def lm_recipe() -> dict[str, Any]:
    """A fresh language-model run with its own tokenizer (as parsed TOML)."""
    texts = [{"kind": "multi30k", "path": "multi30k", "split": "train", "lang": "en", "stop": 20}]
    return {
        "name": "t",
        "output": "out",
        "data_root": "data",
        "steps": 10,
        "batch_size": 4,
        "lr": 1e-3,
        "warmup_steps": 2,
        "model": {"n_embd": 16, "n_senses": 4, "n_layer": 1, "n_head": 2, "max_positions": 48},
        "tokenizer": {"vocab_size": 300, "texts": texts},
        "texts": texts,
    }


def sensia_recipe() -> dict[str, Any]:
    """A SENSIA run from an init checkpoint."""
    parallel = [{"kind": "multi30k", "path": "multi30k", "split": "train", "src": "en", "tgt": "de", "stop": 20}]
    return {"name": "s", "output": "out", "data_root": "data", "steps": 10, "batch_size": 4, "lr": 1e-3,
            "init": "ckpt", "parallel": parallel, "objective": {"sense_align": 0.5}}  # fmt: skip


def test_a_good_recipe_resolves_paths(tmp_path: Path) -> None:
    recipe = recipe_from_mapping(lm_recipe(), tmp_path)
    assert recipe.output == tmp_path / "out"
    assert recipe.texts[0].path == tmp_path / "data" / "multi30k"
    assert recipe.tokenizer is not None
    assert recipe.tokenizer.texts[0].path == tmp_path / "data" / "multi30k"
    assert not recipe.is_sensia
    sensia = recipe_from_mapping(sensia_recipe(), tmp_path, output=tmp_path / "elsewhere", steps=3)
    assert sensia.is_sensia
    assert sensia.init == tmp_path / "ckpt"
    assert (sensia.output, sensia.steps) == (tmp_path / "elsewhere", 3)
    assert sensia.objective is not None
    assert sensia.objective.sense_align == 0.5
    assert recipe_to_dict(sensia)["parallel"][0]["tgt"] == "de"


def test_every_shipped_recipe_loads() -> None:
    names = sorted(path.name for path in RECIPES.glob("*.toml"))
    assert len(names) == 16
    for name in names:
        recipe = load_backpack_recipe(RECIPES / name)
        assert recipe.name == name.removesuffix(".toml")


def _set(raw: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    raw = copy.deepcopy(raw)
    *parents, last = dotted.split(".")
    table = raw
    for key in parents:
        table = table[key][0] if isinstance(table[key], list) else table[key]
    if value is None:
        del table[last]
    else:
        table[last] = value
    return raw


@pytest.mark.parametrize(
    ("dotted", "value", "message"),
    [
        ("steps", 0, "steps"),
        ("lr", 2.0, "lr"),
        ("warmup_steps", 10, "warmup_steps"),
        ("decay", "exponential", "decay"),
        ("batch_size", 1, "batch_size"),
        ("steps", "10", "expected int"),
        ("surprise", 1, "unknown key"),
        ("model", None, "needs a \\[model\\] table"),
        ("tokenizer", None, "exactly one of"),
        ("tokenizer_from", "tok.json", "exactly one of"),
        ("model.n_senses", 3, "n_senses"),
        ("model.dropout", 1.0, "dropout"),
        ("max_len", 64, "max_len"),
        ("tokenizer.vocab_size", 100, "vocab_size"),
        ("texts.kind", "books", "kind"),
        ("texts.split", None, "needs split"),
        ("texts.stop", 0, "stop"),
        ("texts.start", -1, "start"),
        ("objective", {"sense_align": 1.0}, "needs \\[objective\\]"),
    ],
)
def test_bad_language_model_recipes_are_refused(dotted: str, value: Any, message: str, tmp_path: Path) -> None:
    raw = _set(lm_recipe(), dotted, value)
    if dotted == "objective":  # texts with an objective: an objective belongs to [[parallel]] runs
        raw["objective"] = value
    with pytest.raises(RecipeError, match=message):
        recipe_from_mapping(raw, tmp_path)


@pytest.mark.parametrize(
    ("dotted", "value", "message"),
    [
        ("objective", None, "needs \\[objective\\]"),
        ("objective.sense_align", -0.1, "objective.sense_align"),
        ("objective.temperature", 0.0, "temperature"),
        ("parallel.tgt", "en", "differ"),
        ("parallel.kind", "xnli", "kind"),
        ("model", {"n_embd": 16}, "sizes from the checkpoint"),
        ("tokenizer_from", "tok.json", "init brings the tokenizer"),
        ("texts", [{"kind": "lines", "path": "x.txt", "lang": "en"}], "not both"),
    ],
)
def test_bad_sensia_recipes_are_refused(dotted: str, value: Any, message: str, tmp_path: Path) -> None:
    raw = sensia_recipe()
    if dotted in {"model", "tokenizer_from", "texts"}:
        raw[dotted] = value
    else:
        raw = _set(raw, dotted, value)
    with pytest.raises(RecipeError, match=message):
        recipe_from_mapping(raw, tmp_path)


def test_a_bad_file_names_itself(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("name = [", encoding="utf-8")
    with pytest.raises(RecipeError, match=r"bad\.toml: not valid TOML"):
        load_backpack_recipe(path)
