"""Recipes: the shipped TOML files, path resolution, and every validation error naming its field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from trainer_recipes import DATA, recipe_dict

from xalign.training.recipes import RECIPES_DIR
from xalign.training.recipes.base import RecipeError, recipe_to_dict
from xalign.training.recipes.loader import Overrides, load_recipe, recipe_from_mapping
from xalign.training.recipes.recipe import Objective

SHIPPED = ("en_x", "multiway", "dap", "multiway_align_mlm")


def _error(raw: dict[str, Any]) -> str:
    with pytest.raises(RecipeError) as caught:
        recipe_from_mapping(raw, DATA)
    return str(caught.value)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_recipes_load_and_share_everything_but_objectives(name: str) -> None:
    recipe = load_recipe(RECIPES_DIR / f"{name}.toml")
    reference = load_recipe(RECIPES_DIR / "en_x.toml")
    assert recipe.base == "offline:e5-small" and recipe.prefix == "query: "
    assert (recipe.steps, recipe.batch_size, recipe.lr, recipe.warmup_steps) == (400, 32, 2e-5, 40)
    assert recipe.data == reference.data and recipe.dev == reference.dev
    assert recipe.output == RECIPES_DIR.parents[1] / "runs" / name
    # Tatoeba and BUCC are the evaluation: never training data.
    used = [str(s.path) for s in recipe.data] + [str(d.path) for d in recipe.dictionaries]
    assert not [p for p in used if "tatoeba" in p or "bucc" in p]
    assert recipe.dev is not None and recipe.dev.tatoeba_dir.name == "tatoeba" and recipe.eval_every == 200
    assert recipe.dev.langs == ("deu", "fra", "ces", "spa", "rus") and recipe.dev.max_lines == 200


def test_shipped_objective_mixes() -> None:
    def mix(name: str) -> list[tuple[str, float]]:
        recipe = load_recipe(RECIPES_DIR / f"{name}.toml")
        return [(o.name, o.weight) for o in recipe.objectives]

    assert mix("en_x") == [("translation_ranking", 1.0)]
    assert mix("multiway") == [("multiway_contrastive", 1.0)]
    assert mix("dap") == [("translation_ranking", 1.0), ("representation_translation", 0.1)]
    assert mix("multiway_align_mlm") == [("multiway_contrastive", 1.0), ("align_mlm", 0.1)]
    assert load_recipe(RECIPES_DIR / "dap.toml").pairing == "english_centric"
    assert load_recipe(RECIPES_DIR / "multiway.toml").pairing == "multiway"
    assert len(load_recipe(RECIPES_DIR / "multiway_align_mlm.toml").dictionaries) == 5


def test_relative_paths_and_overrides(tmp_path: Path) -> None:
    folder = tmp_path / "recipes"
    folder.mkdir()
    (folder / "r.toml").write_text(
        'base = "models/tiny"\noutput = "out"\ndata_root = "../data"\nsteps = 5\n'
        '[[data]]\nkind = "tsv"\npath = "pairs.tsv"\nlangs = ["en", "de"]\n'
        '[[objectives]]\nname = "translation_ranking"\n',
        encoding="utf-8",
    )
    recipe = load_recipe(folder / "r.toml")
    assert recipe.base == str(folder / "models" / "tiny")
    assert recipe.output == folder / "out"
    assert recipe.data_root == tmp_path / "data"
    assert recipe.data[0].path == tmp_path / "data" / "pairs.tsv"
    overrides = Overrides(output=tmp_path / "o2", steps=9, data_root=tmp_path / "d2", seed=7)
    changed = load_recipe(folder / "r.toml", overrides)
    assert (changed.output, changed.steps, changed.data[0].path) == (tmp_path / "o2", 9, tmp_path / "d2" / "pairs.tsv")
    assert (recipe.seed, changed.seed) == (0, 7)


def test_recipe_dict_is_json_and_rebuilds_the_same_recipe(tmp_path: Path) -> None:
    recipe = recipe_from_mapping(recipe_dict(tmp_path / "m", tmp_path / "o", "multiway_align_mlm"), DATA)
    plain = json.loads(json.dumps(recipe_to_dict(recipe)))
    assert plain["objectives"][1] == {"name": "align_mlm", "weight": 0.1, "params": {}}
    assert recipe_from_mapping(plain, DATA) == recipe


def test_objective_params_default_and_override() -> None:
    objective = Objective("translation_ranking", params={"temperature": 0.1})
    assert objective.param("temperature") == 0.1 and objective.param("symmetric") is True


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"lnr": 1e-3}, "recipe: unknown key(s) lnr"),
        ({"steps": "ten"}, "steps: expected int, got str"),
        ({"steps": 0}, "steps: must be at least 1"),
        ({"lr": True}, "lr: expected a number, got bool"),
        ({"decay": "step"}, "decay: must be one of 'linear', 'cosine' or 'constant'"),
        ({"warmup_steps": 7}, "warmup_steps: must be in [0, steps=6]"),
        ({"pairing": "pivot"}, "pairing: must be one of"),
        ({"batch_size": 1}, "batch_size: contrastive objectives need at least 2"),
        ({"eval_every": 5}, "eval_every: needs a [dev] table"),
        ({"seed": -1}, "seed: must not be negative"),
        ({"device": "tpu"}, "device: must be one of 'auto', 'cpu' or 'cuda'"),
        ({"base": "offline:e5-base"}, "base: the offline base is 'offline:e5-small'"),
        ({"objectives": []}, "objectives: needs at least one objective"),
        ({"objectives": [{"name": "mlm"}, {"name": "mlm"}]}, "objectives: names an objective twice"),
        ({"objectives": [{"name": "sts"}]}, "objectives[0].name: must be one of"),
        ({"objectives": [{"name": "mlm", "weight": 0}]}, "objectives[0].weight: must be positive"),
        ({"objectives": [{"name": "mlm", "params": {"tau": 1}}]}, "objectives[0].params.tau: unknown for mlm"),
        ({"objectives": [{"name": "mlm", "params": {"mask_prob": "x"}}]}, "params.mask_prob: must be float"),
        ({"objectives": [{"name": "translation_ranking", "params": {"symmetric": 1}}]}, "must be bool"),
        ({"objectives": [{"name": "align_mlm"}]}, "dictionaries: are needed by align_mlm"),
        ({"dictionaries": [{"path": "d.txt", "src_lang": "en", "tgt_lang": "de"}]}, "used only by it"),
        (
            {
                "objectives": [{"name": "align_mlm"}],
                "freeze_embeddings": True,
                "dictionaries": [{"path": "d.txt", "src_lang": "en", "tgt_lang": "de"}],
            },
            "freeze_embeddings: cannot be combined with align_mlm",
        ),
        ({"dev": {"tatoeba_dir": "t", "langs": []}}, "dev.langs: needs at least 1 language"),
        ({"dev": {"tatoeba_dir": "t", "max_lines": 1}}, "dev.max_lines: must be at least 2"),
        ({"dev": {"langs": ["deu"]}}, "dev: missing key(s) tatoeba_dir"),
        ({"data": []}, "data: needs at least one source"),
        ({"data": [{"kind": "opus", "path": "x", "langs": ["en", "de"]}]}, "data[0].kind: must be one of"),
        ({"data": [{"kind": "multi30k", "path": "m", "langs": ["en", "de"]}]}, "data[0].split: a multi30k source"),
        ({"data": [{"kind": "ntrex", "path": "n", "langs": ["en"]}]}, "data[0].langs: needs at least 2"),
        ({"data": [{"kind": "ntrex", "path": "n", "langs": ["en", "en"]}]}, "data[0].langs: repeats a language"),
        ({"data": [{"kind": "ntrex", "path": "n", "langs": ["en", "de"], "split": "x"}]}, "takes no split"),
        ({"data": [{"kind": "tsv", "path": "t", "langs": ["en", "de", "fr"]}]}, "exactly two languages"),
        ({"data": [{"kind": "tsv", "path": "t", "langs": ["en", "de"], "columns": [1, 1]}]}, "data[0].columns"),
        ({"data": [{"kind": "aligned", "files": {"en": "a"}}]}, "data[0].files: an aligned source needs"),
        ({"data": [{"kind": "ntrex", "path": "n", "langs": ["de", "fr"]}]}, "pivot: english_centric pairing"),
        ({"data": [{"kind": "ntrex", "path": "n", "langs": "en"}]}, "data[0].langs: expected list"),
        ({"data": [{"kind": "ntrex", "path": "n", "lang": ["en"]}]}, "data[0]: unknown key(s) lang"),
    ],
)
def test_validation_errors_name_the_field(change: dict[str, Any], message: str, tmp_path: Path) -> None:
    raw = recipe_dict(tmp_path / "m", tmp_path / "o", "en_x")
    raw.update(change)
    assert message in _error(raw)


def test_missing_required_keys_are_named(tmp_path: Path) -> None:
    raw = recipe_dict(tmp_path / "m", tmp_path / "o")
    del raw["steps"], raw["output"]
    assert "recipe: missing key(s) steps, output" in _error(raw)


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("steps = = 3\n", encoding="utf-8")
    with pytest.raises(RecipeError, match=r"bad\.toml: not valid TOML"):
        load_recipe(path)
