"""Recipe data sources read into training examples, with a sha256 record of every file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from trainer_recipes import DATA, MULTI30K, recipe_dict

from xalign.training.recipes.loader import recipe_from_mapping
from xalign.training.trainer.sources import TrainingData, load_training_data

XNLI = {"kind": "xnli", "path": "xnli", "split": "dev", "langs": ["en", "de"]}


def _load(tmp_path: Path, **changes: object) -> TrainingData:
    return load_training_data(recipe_from_mapping(recipe_dict(tmp_path / "m", tmp_path / "o", **changes), DATA))


def test_english_centric_pairs_from_every_kind(tmp_path: Path) -> None:
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("hello\thallo\nthanks\tdanke\n\nhello\thallo\n", encoding="utf-8")
    aligned = {"en": str(DATA / "multi30k" / "train.en"), "cs": str(DATA / "multi30k" / "train.cs")}
    data = [
        {**MULTI30K, "max_rows": 10},
        XNLI,
        {"kind": "tsv", "path": str(tsv), "langs": ["en", "de"]},
        {"kind": "aligned", "files": aligned, "max_rows": 10},
    ]
    loaded = _load(tmp_path, data=data)
    # multi30k 10 rows x 3 pairs; XNLI 3 premises + 9 hypotheses; 2 distinct tsv pairs; the en-cs rows duplicate
    # pairs that multi30k already gave, and duplicates are dropped.
    assert loaded.rows_per_source == {"multi30k/train": 10, "xnli/dev": 12, "tsv/pairs.tsv": 3, "aligned": 10}
    assert len(loaded.examples) == 30 + 12 + 2
    assert all(len(row.langs) == 2 and "en" in row.langs for row in loaded.examples)
    names = [corpus.name for corpus in loaded.corpora]
    assert names == ["multi30k/train", "xnli/dev", "tsv/pairs.tsv", "aligned"]
    xnli_files = {f.path: f for f in loaded.corpora[1].files}
    assert set(xnli_files) == {"xnli/dev-en.tsv", "xnli/dev-de.tsv"}
    assert xnli_files["xnli/dev-en.tsv"].sha256 == hashlib.sha256((DATA / "xnli/dev-en.tsv").read_bytes()).hexdigest()
    assert loaded.corpora[2].files[0].path == str(tsv)  # outside the data root: an absolute path


def test_multiway_rows_length_filter_and_dictionary(tmp_path: Path) -> None:
    loaded = _load(tmp_path, mix="multiway_align_mlm", max_chars=60)
    assert all(len(row.langs) == 4 for row in loaded.examples)
    assert all(len(text) <= 60 for row in loaded.examples for text in row.texts.values())
    assert 0 < len(loaded.examples) < 48
    assert len(loaded.dictionary) == 41 and loaded.dictionary[0].src == "began"
    assert loaded.corpora[-1].name == "muse/en-de" and loaded.corpora[-1].files[0].lines == 41


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"train\.es"):
        _load(tmp_path, data=[{**MULTI30K, "langs": ["en", "es"]}])
