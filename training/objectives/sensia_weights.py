"""The weights of SENSIA's four loss terms and its InfoNCE temperature (``sensia.py``); torch-free.

They are also the ``[objective]`` table of a Backpack SENSIA recipe (``training/backpack_training/recipe.py``),
so they are a recipe dataclass: pydantic checks each bound, and the schema of ``xalign-train schema
backpack`` states it.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from pydantic.dataclasses import dataclass

from xalign.training.recipes.base import RECIPE_CONFIG

DEFAULT_TEMPERATURE = 0.1

# A loss weight: finite and non-negative; 0 skips the term.
Weight = Annotated[float, Field(ge=0, allow_inf_nan=False)]


@dataclass(frozen=True, config=RECIPE_CONFIG)
class SensiaWeights:
    """Weights of the four SENSIA terms and the InfoNCE temperature (a weight of 0 skips the term)."""

    target_lm: Weight = 1.0
    source_lm: Weight = 1.0
    sense_align: Weight = 1.0
    context_align: Weight = 1.0
    temperature: Annotated[float, Field(gt=0, le=10)] = DEFAULT_TEMPERATURE

    def __post_init__(self) -> None:
        if self.target_lm + self.source_lm + self.sense_align + self.context_align == 0:
            raise ValueError(f"SENSIA weights must not all be 0: {self}")

    @property
    def aligns(self) -> bool:
        """Whether any alignment term is on (it needs the English side's forward pass)."""
        return self.sense_align > 0 or self.context_align > 0
