"""A tiny En-X retraining recipe over 16 Multi30k en-de rows of the test data."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
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
