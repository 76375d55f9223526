"""``train_top_layers``: only the top encoder layers train, so a checkpoint differs from its base by a small delta."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import transformers
from resume_checks import interrupted_equals_uninterrupted
from safetensors.torch import load_file
from trainer_recipes import DATA, DICTIONARY, make_recipe, recipe_dict

from xalign.training.recipes.base import RecipeError
from xalign.training.recipes.loader import recipe_from_mapping
from xalign.training.trainer.build import build_module
from xalign.training.trainer.loop import train


@pytest.mark.parametrize(
    ("mix", "changes", "message"),
    [
        ("en_x", {"train_top_layers": 0}, "train_top_layers: must be at least 1"),
        ("mlm", {"train_top_layers": 1}, "train_top_layers: cannot be combined with mlm"),
        ("multiway_align_mlm", {"train_top_layers": 1}, "train_top_layers: cannot be combined with align_mlm"),
        ("en_x", {"train_top_layers": True}, "train_top_layers: expected int, got bool"),
    ],
)
def test_recipe_refuses_bad_values(mix: str, changes: dict[str, Any], message: str, tmp_path: Path) -> None:
    raw = recipe_dict(tmp_path / "m", tmp_path / "o", mix, **changes)
    if mix == "multiway_align_mlm":
        raw["dictionaries"] = [DICTIONARY]
    with pytest.raises(RecipeError, match=message):
        recipe_from_mapping(raw, DATA)


def test_only_the_top_layer_changes(mlm_model_dir: Path, tmp_path: Path) -> None:
    # DAP: the RTL decoder head still trains, but it is not part of the encoder a checkpoint holds.
    recipe = make_recipe(mlm_model_dir, tmp_path / "run", "dap", train_top_layers=1, steps=3)
    result = train(recipe, progress=False)
    assert result.checkpoint is not None
    before, after = (
        load_file(str(mlm_model_dir / "model.safetensors")),
        load_file(str(result.checkpoint / "model.safetensors")),
    )
    changed = {key for key in before if not torch.equal(before[key], after[key])}
    top = {key for key in before if key.startswith("encoder.layer.1.")}
    assert changed and changed <= top  # nothing outside layer 1 moved
    assert "encoder.layer.1.attention.self.query.weight" in changed


def test_build_leaves_only_the_top_layers_and_the_heads_trainable(mlm_model_dir: Path, tmp_path: Path) -> None:
    recipe = make_recipe(mlm_model_dir, tmp_path / "run", "dap", train_top_layers=1)
    module = build_module(recipe, transformers.AutoModel.from_pretrained(str(mlm_model_dir)))
    trainable = {name for name, param in module.named_parameters() if param.requires_grad}
    encoder = {name for name in trainable if name.startswith("encoder.")}
    assert encoder == {f"encoder.{n}" for n, _ in module.encoder.named_parameters() if n.startswith("encoder.layer.1.")}
    assert len(encoder) == 16
    assert any(name.startswith("tasks.representation_translation.") for name in trainable)


def test_resume_with_top_layers_is_exact(mlm_model_dir: Path, tmp_path: Path) -> None:
    recipe = make_recipe(mlm_model_dir, tmp_path / "whole", "dap", train_top_layers=1, steps=4, grad_accum=2)
    interrupted_equals_uninterrupted(recipe, tmp_path)


def test_more_layers_than_the_model_has_are_refused(mlm_model_dir: Path, tmp_path: Path) -> None:
    recipe = make_recipe(mlm_model_dir, tmp_path / "run", "en_x", train_top_layers=3, steps=1)
    with pytest.raises(ValueError, match=r"train_top_layers: must be in 1\.\.2"):
        train(recipe, progress=False)
