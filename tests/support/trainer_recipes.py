"""Recipes of the trainer tests over the small copied corpora, and the tiny BERT given a mask token."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import transformers

from xalign.training.recipes.loader import recipe_from_mapping
from xalign.training.recipes.recipe import Recipe

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "trainer"
TATOEBA_MINI = REPO / "tests" / "data" / "tatoeba_mini"
MULTI30K = {"kind": "multi30k", "path": "multi30k", "split": "train", "langs": ["en", "de", "fr", "cs"]}
DICTIONARY = {"path": "muse/en-de.0-5000.txt", "src_lang": "en", "tgt_lang": "de"}

# The objective mixes of the four comparison recipes (small weights as they ship), plain MLM, and En-X with
# the distillation anchor of the aligned-default delta.
MIXES: dict[str, list[dict[str, Any]]] = {
    "en_x": [{"name": "translation_ranking"}],
    "multiway": [{"name": "multiway_contrastive"}],
    "dap": [{"name": "translation_ranking"}, {"name": "representation_translation", "weight": 0.1}],
    "en_x_distill": [{"name": "translation_ranking"}, {"name": "embedding_distillation"}],
    "multiway_align_mlm": [{"name": "multiway_contrastive"}, {"name": "align_mlm", "weight": 0.1}],
    "mlm": [{"name": "mlm"}],
}


def add_mask_token(folder: Path) -> Path:
    """Give the tiny model's tokenizer a ``[MASK]`` token (id 86, inside the 120-row embedding)."""
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder))
    tokenizer.add_special_tokens({"mask_token": "[MASK]"})
    tokenizer.save_pretrained(folder)
    return folder


def recipe_dict(model_dir: Path, output: Path, mix: str = "en_x", **changes: Any) -> dict[str, Any]:
    """A small recipe as parsed TOML: Multi30k excerpt, batch 4, 6 steps, 32 tokens, checkpoint at the end."""
    raw: dict[str, Any] = {
        "base": str(model_dir),
        "output": str(output),
        "data_root": str(DATA),
        "data": [MULTI30K],
        "objectives": MIXES[mix],
        "pairing": "multiway" if mix.startswith("multiway") else "english_centric",
        "steps": 6,
        "batch_size": 4,
        "lr": 1e-3,
        "warmup_steps": 1,
        "max_seq_length": 32,
        "keep_checkpoints": 0,
        "device": "cpu",  # bit-exact comparisons need deterministic kernels
    }
    if mix == "multiway_align_mlm":
        raw["dictionaries"] = [DICTIONARY]
    raw.update(changes)
    return raw


def make_recipe(model_dir: Path, output: Path, mix: str = "en_x", **changes: Any) -> Recipe:
    """``recipe_dict`` validated into a ``Recipe``."""
    return recipe_from_mapping(recipe_dict(model_dir, output, mix, **changes), DATA)


def write_cli_recipe(folder: Path, model_dir: Path, extra: str = "") -> Path:
    """A 4-step En-X recipe file for the command line, output in ``run`` beside it."""
    path = folder / "tiny.toml"
    path.write_text(
        f'base = "{model_dir}"\noutput = "run"\ndata_root = "{DATA}"\nsteps = 4\nbatch_size = 4\n'
        f'max_seq_length = 32\nlr = 1e-3\nkeep_checkpoints = 0\ndevice = "cpu"\n{extra}'
        '[[data]]\nkind = "multi30k"\npath = "multi30k"\nsplit = "train"\nlangs = ["en", "de"]\n'
        '[[objectives]]\nname = "translation_ranking"\n',
        encoding="utf-8",
    )
    return path
