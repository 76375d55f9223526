"""Read a dual-encoder recipe TOML file into a validated ``Recipe`` (``recipe.py``) with ``base.py``.

Keys map one to one to the dataclass fields of ``recipe.py``; an unknown or missing key, or a value of the
wrong type, is a ``RecipeError`` naming where it is (``data[1].langs: ...``). Relative paths:

* ``data_root``, ``output``, ``cache_dir`` and a ``base`` folder resolve against the recipe file's folder;
* every path inside ``[[data]]``, ``[[dictionaries]]`` and ``[dev]`` resolves against ``data_root``;
* without ``data_root`` that is the recipe's folder; without ``cache_dir``, ``.cache/xalign`` in the working
  directory (the Makefile's ``CACHE``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from xalign.training.recipes.base import Overrides, build_recipe, load_recipe_file
from xalign.training.recipes.recipe import Recipe

# Overrides is the command lines' to give (``training/cli.py``, ``export/cli.py``).
__all__ = ["Overrides", "load_recipe", "recipe_from_mapping"]


def load_recipe(path: Path, overrides: Overrides | None = None) -> Recipe:
    """Parse and validate the recipe at ``path``; ``RecipeError`` (a ``ValueError``) names any wrong key."""
    return load_recipe_file(Recipe, path, overrides)


def recipe_from_mapping(raw: Mapping[str, Any], recipe_dir: Path, overrides: Overrides | None = None) -> Recipe:
    """Build a ``Recipe`` from parsed TOML; relative paths resolve as the module docstring says."""
    return build_recipe(Recipe, raw, recipe_dir, overrides)
