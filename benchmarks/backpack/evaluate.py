"""Evaluate the trained Backpack runs of the SENSIA experiment into one results dictionary (JSON-ready).

Per target language X (de, fr, cs) and model (the English ``source``, ``sensia``, ``joint`` and the
target-only ``target_1x`` / ``2x`` / ``4x``):

- ``ppl``: X perplexity on Multi30k val; ``en_ppl``: English perplexity on Multi30k val.en (models that saw
  English: source, sensia, joint);
- ``retrieval``: Multi30k val 1-NN accuracy en->X and X->en of mean-pooled contextual outputs;
- ``geometry.cross``: English words' senses against their MUSE translations' senses (``geometry``). For a
  model that saw English the two spaces come from the model itself; a target-only model never saw English,
  so its X senses are compared with the source model's English senses (the natural "separately trained"
  reference);
- ``geometry.english``: the source model's English senses against this model's English senses (how much of
  the English geometry adaptation kept; sensia and joint only).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from benchmarks.backpack.geometry import TokenPair, compare_spaces, cosine_distances, sense_space, single_token_pairs
from benchmarks.backpack.lm_eval import perplexity, retrieval_accuracy, sentence_embeddings
from xalign.training.data.lines import read_lines
from xalign.training.data.muse import read_muse
from xalign.training.models.backpack import Backpack, load_backpack
from xalign.training.models.backpack_tokenizer import load_tokenizer

MUSE_FILES = {"de": "en-de.0-5000.txt", "fr": "en-fr.dict", "cs": "en-cs.dict"}
ADAPTED = ("sensia", "joint", "init_lm")  # started from the English source (init_lm: the curve's control)
TARGET_ONLY = ("target_1x", "target_2x", "target_4x")
KNN = 10


def load_checkpoint(folder: Path) -> tuple[Backpack, Tokenizer]:
    """A Backpack checkpoint folder's model (eval mode) and tokenizer."""
    return load_backpack(folder), load_tokenizer(Path(folder) / "tokenizer.json")


def val_texts(data_root: Path, lang: str) -> list[str]:
    """Multi30k val sentences of ``lang`` (1,014)."""
    return [line.strip() for line in read_lines(Path(data_root) / "multi30k" / f"val.{lang}")]


def dictionary_pairs(data_root: Path, lang: str, tokenizer: Tokenizer) -> list[TokenPair]:
    """MUSE en->``lang`` pairs whose words are distinct single tokens of ``tokenizer``."""
    entries = read_muse(Path(data_root) / "muse" / MUSE_FILES[lang], "en", lang)
    return single_token_pairs(tokenizer, entries)


def _retrieval(model: Backpack, tokenizer: Tokenizer, en: list[str], other: list[str]) -> dict[str, float]:
    src, tgt = sentence_embeddings(model, tokenizer, en), sentence_embeddings(model, tokenizer, other)
    return {"en_x": retrieval_accuracy(src, tgt), "x_en": retrieval_accuracy(tgt, src)}


def evaluate_model(
    name: str, folder: Path, lang: str, *, data_root: Path, source: Backpack, pairs: list[TokenPair]
) -> dict[str, Any]:
    """Every measurement of one model for language ``lang`` (see the module docstring)."""
    model, tokenizer = load_checkpoint(folder)
    en, other = val_texts(data_root, "en"), val_texts(data_root, lang)
    saw_english = name == "source" or name in ADAPTED
    en_space = sense_space(model if saw_english else source, [p.src_id for p in pairs])
    result: dict[str, Any] = {
        "ppl": perplexity(model, tokenizer, other),
        "en_ppl": perplexity(model, tokenizer, en) if saw_english else None,
        "retrieval": _retrieval(model, tokenizer, en, other),
        "geometry": {"cross": asdict(compare_spaces(en_space, sense_space(model, [p.tgt_id for p in pairs]), KNN))},
    }
    if name in ADAPTED:
        source_en = sense_space(source, [p.src_id for p in pairs])
        result["geometry"]["english"] = asdict(compare_spaces(source_en, en_space, KNN))
    return result


def evaluate_language(
    lang: str, checkpoints: Mapping[str, Path], data_root: Path, target_lines: Mapping[str, int]
) -> dict[str, Any]:
    """Results of every model of ``lang``: ``checkpoints`` maps source/sensia/joint/target_Nx to folders."""
    source, tokenizer = load_checkpoint(checkpoints["source"])
    pairs = dictionary_pairs(data_root, lang, tokenizer)
    models = {}
    for name, folder in checkpoints.items():
        models[name] = evaluate_model(name, folder, lang, data_root=data_root, source=source, pairs=pairs)
        models[name]["target_lines"] = target_lines.get(name, 0)
    return {
        "dictionary": MUSE_FILES[lang],
        "pairs": len(pairs),
        "knn_chance": KNN / max(len(pairs) - 1, 1),
        "example_pairs": [f"{p.src}={p.tgt}" for p in pairs[:12]],
        "models": models,
    }


def distance_pairs(source: Path, other: Path, lang: str, data_root: Path, limit: int = 300) -> tuple[Any, Any]:
    """Upper-triangular cosine distances of the first ``limit`` pairs: source-model English senses, and the
    ``other`` model's translations' senses (for the scatter plot)."""
    src_model, tokenizer = load_checkpoint(source)
    pairs = dictionary_pairs(data_root, lang, tokenizer)[:limit]
    other_model, _ = load_checkpoint(other)
    upper = np.triu_indices(len(pairs), k=1)
    x = cosine_distances(sense_space(src_model, [p.src_id for p in pairs]))[upper]
    y = cosine_distances(sense_space(other_model, [p.tgt_id for p in pairs]))[upper]
    return x.tolist(), y.tolist()
