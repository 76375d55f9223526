"""Recipe tables of the training-efficiency options: hard-negative mining and grouped batches.

The flat options (``cache_frozen_layers``, ``grad_cache_chunk``, ``gather_negatives``, ``group_batches``) live
on ``Recipe`` itself (``recipe.py``); this module holds the ``[hard_negatives]`` table and the check of how the
options combine with the objectives. Nothing here imports torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

from pydantic.dataclasses import dataclass

from xalign.training.recipes.base import RECIPE_CONFIG, require

# Objectives whose loss depends on the pooled sentence embeddings alone: gradient caching can split them.
POOLED_ONLY: Final = frozenset({"translation_ranking", "multiway_contrastive", "embedding_distillation"})


@dataclass(frozen=True, config=RECIPE_CONFIG)
class HardNegatives:
    """Hard negatives mined at the start of every epoch with the model as it is then.

    ``count`` negatives per example join its batch as extra ranking candidates; a candidate whose similarity to
    the source is within ``margin`` of the true translation's (a likely paraphrase) is skipped, as are exact
    duplicates of the translation. ``pool`` bounds the search: examples are split into groups of about that
    many neighbours (``training/data/grouped_batches.py``) and searched within their group (0: the whole corpus).
    ``embed_batch_size`` is the batch of the mining encoder.
    """

    count: int = 3
    margin: float = 0.05
    pool: int = 4096
    embed_batch_size: int = 64

    def __post_init__(self) -> None:
        require(self.count >= 1, "count", "must be at least 1")
        require(math.isfinite(self.margin) and 0 <= self.margin < 2, "margin", "must be in [0, 2)")
        require(self.pool == 0 or self.pool >= 2, "pool", "must be 0 (whole corpus) or at least 2")
        require(self.embed_batch_size >= 1, "embed_batch_size", "must be at least 1")


def check_efficiency(
    names: Sequence[str], *, top_layers: int | None, cache: bool, grad_cache_chunk: int, hard: HardNegatives | None
) -> None:
    """``RecipeError`` when an efficiency option does not fit the recipe's objectives or layers."""
    require(not cache or top_layers is not None, "cache_frozen_layers", "needs train_top_layers (what is frozen)")
    require(grad_cache_chunk >= 0, "grad_cache_chunk", "must not be negative (0 turns gradient caching off)")
    others = sorted(set(names) - POOLED_ONLY)
    require(
        grad_cache_chunk == 0 or not others,
        "grad_cache_chunk",
        f"works only with losses of pooled embeddings ({', '.join(sorted(POOLED_ONLY))}), not {', '.join(others)}",
    )
    require(hard is None or "translation_ranking" in names, "hard_negatives", "are candidates of translation_ranking")
