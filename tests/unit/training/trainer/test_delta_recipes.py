"""The recipes of the aligned-default delta: small enough to commit, and never trained on evaluation data."""

from __future__ import annotations

import pytest

from xalign.training.delta import MAX_DELTA_BYTES
from xalign.training.recipes import RECIPES_DIR
from xalign.training.recipes.loader import load_recipe

# Bytes of one multilingual-e5-small layer in fp32: 4 attention (384x384 + 384) and 2 FFN (384x1536) blocks
# with biases, plus 2 LayerNorms.
LAYER_BYTES = 4 * (4 * (384 * 384 + 384) + 2 * 384 * 1536 + 1536 + 384 + 4 * 384)


@pytest.mark.parametrize(
    "name", ["default_delta", "default_delta_news", "default_delta_distill", "en_x_240", "en_x_240_top4"]
)
def test_delta_recipes_train_few_layers_on_training_data_only(name: str) -> None:
    recipe = load_recipe(RECIPES_DIR / f"{name}.toml")
    assert recipe.train_top_layers is not None
    assert recipe.train_top_layers * LAYER_BYTES <= MAX_DELTA_BYTES
    _training_data_only(name)


def test_the_whole_encoder_recipe_ships_compressed() -> None:
    # Every layer and the word embeddings train: 470 MB of weights, so its delta is extracted with --rank.
    recipe = load_recipe(RECIPES_DIR / "multiway_full.toml")
    assert recipe.train_top_layers is None and not recipe.freeze_embeddings
    assert "delta extract" in (RECIPES_DIR / "multiway_full.toml").read_text(encoding="utf-8")
    _training_data_only("multiway_full")


def _training_data_only(name: str) -> None:
    recipe = load_recipe(RECIPES_DIR / f"{name}.toml")
    kinds = {source.kind for source in recipe.data}
    assert kinds <= {"multi30k", "ntrex", "wmt", "xnli"}
    assert not any("tatoeba" in str(source.path) or "bucc" in str(source.path) for source in recipe.data)
