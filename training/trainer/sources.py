"""The recipe's data, read: training examples in a fixed order, dictionary entries, and the files' record.

Per source: its files are found (``training.data.shipped``, ``xnli_files``, or the recipe's own paths), read
into rows, cut to ``max_rows`` and length-filtered. Then all sources together are paired (English-centric
``{en, x}`` pairs, or the multi-way rows as they are) and exact duplicates dropped. The order of the result
depends only on the recipe and the files, so every process and every resumed run gets the same list.

Every file read (corpora, dictionaries, the Tatoeba dev files) is described with its sha256 and line count
(``training.data.corpus``); a checkpoint records them and a resumed run refuses changed data.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from xalign.training.data.aligned import read_aligned
from xalign.training.data.corpus import Corpus, describe_corpus
from xalign.training.data.muse import read_muse
from xalign.training.data.processing import deduplicate, english_centric, filter_length
from xalign.training.data.records import ParallelRow, WordPair
from xalign.training.data.shipped import multi30k, ntrex, wmt_newstest
from xalign.training.data.tsv import read_tsv_pairs
from xalign.training.data.xnli import read_xnli, xnli_files
from xalign.training.evaluate.tatoeba import tatoeba_files
from xalign.training.recipes.recipe import DataSource, DevEval, Recipe

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingData:
    """The examples in training order, the dictionary entries, and the description of every file read."""

    examples: list[ParallelRow]
    dictionary: list[WordPair]
    corpora: list[Corpus]
    rows_per_source: dict[str, int]

    @property
    def languages(self) -> list[str]:
        """Every language of the examples, sorted."""
        return sorted({lang for row in self.examples for lang in row.langs})


def source_name(source: DataSource) -> str:
    """A short name for logs and the manifest, e.g. ``multi30k/train`` or ``wmt/newstest2012``."""
    if source.kind == "tsv" and source.path is not None:
        return f"tsv/{source.path.name}"
    return f"{source.kind}/{source.split}" if source.split else source.kind


def source_files(source: DataSource) -> dict[str, Path]:
    """The files ``source`` reads, by language; ``FileNotFoundError`` naming a missing one."""
    path = Path(source.path) if source.path is not None else Path()
    if source.kind == "multi30k":
        return multi30k(path, source.split or "train", source.langs)
    if source.kind == "ntrex":
        return ntrex(path, source.langs)
    if source.kind == "wmt":
        return wmt_newstest(path, source.split or "", source.langs)
    if source.kind == "xnli":
        return xnli_files(path, source.split or "dev", source.langs)
    if source.kind == "tsv":
        if not path.is_file():
            raise FileNotFoundError(f"{path}: TSV file not found")
        return {"+".join(source.langs): path}
    for file in source.files.values():
        if not Path(file).is_file():
            raise FileNotFoundError(f"{file}: aligned file not found")
    return {lang: Path(file) for lang, file in source.files.items()}


def read_source(source: DataSource) -> list[ParallelRow]:
    """The rows of ``source`` in file order, at most ``max_rows`` of them."""
    if source.kind == "xnli":
        rows = read_xnli(Path(source.path or "."), source.split or "dev", source.langs)
    elif source.kind == "tsv":
        src, tgt = source.langs
        first, second = source.columns
        rows = read_tsv_pairs(Path(source.path or "."), src, tgt, (first, second))
    else:
        rows = read_aligned(source_files(source))
    return rows[: source.max_rows] if source.max_rows is not None else rows


def describe(name: str, files: dict[str, Path] | Sequence[Path], data_root: Path) -> Corpus:
    """sha256 and line counts of ``files``, paths relative to ``data_root`` when all lie inside it."""
    paths = list(files.values()) if isinstance(files, dict) else list(files)
    inside = all(Path(p).resolve().is_relative_to(data_root.resolve()) for p in paths)
    return describe_corpus(name, files, data_root if inside else None)


def load_training_data(recipe: Recipe) -> TrainingData:
    """Read, filter, pair and deduplicate the recipe's data; read its dictionaries; describe every file."""
    rows: list[ParallelRow] = []
    corpora: list[Corpus] = []
    counts: dict[str, int] = {}
    for source in recipe.data:
        name = source_name(source)
        corpora.append(describe(name, source_files(source), recipe.data_root))
        kept = filter_length(read_source(source), recipe.min_chars, recipe.max_chars)
        counts[name] = counts.get(name, 0) + len(kept)
        rows.extend(kept)
    paired = english_centric(rows, recipe.pivot) if recipe.pairing == "english_centric" else rows
    examples = deduplicate(row for row in paired if len(row.langs) >= 2)
    dictionary: list[WordPair] = []
    for entry in recipe.dictionaries:
        corpora.append(describe(f"muse/{entry.src_lang}-{entry.tgt_lang}", [entry.path], recipe.data_root))
        dictionary.extend(read_muse(entry.path, entry.src_lang, entry.tgt_lang))
    log.info("training data: %d examples (%s pairing) from %s", len(examples), recipe.pairing, counts)
    return TrainingData(examples, dictionary, corpora, counts)


def dev_files(dev: DevEval) -> dict[str, Path]:
    """The Tatoeba files the dev evaluation reads, by ``{lang}`` and ``eng-{lang}``."""
    files: dict[str, Path] = {}
    for lang in dev.langs:
        src, eng = tatoeba_files(dev.tatoeba_dir, lang)
        files[lang] = src
        files[f"eng-{lang}"] = eng
    return files
