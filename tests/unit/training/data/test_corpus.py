"""Corpus records: sha256 and line counts of the files, relative paths, manifest entries, verification."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from data_paths import MINI

from xalign.modelstore.manifest import DataFile
from xalign.training.data.corpus import Corpus, describe_corpus, sha256_of
from xalign.training.data.errors import DataError
from xalign.training.data.shipped import multi30k


def test_sha256_of_is_the_sha256_of_the_bytes() -> None:
    path = MINI / "multi30k" / "train.en"
    assert sha256_of(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_describe_records_relative_paths_checksums_and_line_counts() -> None:
    corpus = describe_corpus("multi30k/train", multi30k(MINI / "multi30k", "train", ["en", "de"]), root=MINI)
    assert [(f.path, f.lang, f.lines) for f in corpus.files] == [
        ("multi30k/train.en", "en", 12),
        ("multi30k/train.de", "de", 12),
    ]
    assert corpus.files[1].sha256 == hashlib.sha256((MINI / "multi30k" / "train.de").read_bytes()).hexdigest()
    assert corpus.files[0].bytes == (MINI / "multi30k" / "train.en").stat().st_size
    assert corpus.data_files() == [DataFile(path=f.path, sha256=f.sha256) for f in corpus.files]
    assert Corpus.from_dict(json.loads(json.dumps(corpus.to_dict()))) == corpus


def test_a_list_of_paths_has_no_languages_and_crlf_lines_count_once() -> None:
    path = MINI / "ntrex128" / "newstest2019-src.eng.txt"
    corpus = describe_corpus("ntrex", [path])
    assert corpus.files[0].lang is None
    assert corpus.files[0].path == path.as_posix()
    assert corpus.files[0].lines == 8


def test_verify_names_a_changed_file(tmp_path: Path) -> None:
    shutil.copy(MINI / "multi30k" / "train.en", tmp_path / "train.en")
    corpus = describe_corpus("c", {"en": tmp_path / "train.en"}, root=tmp_path)
    corpus.verify(tmp_path)
    with (tmp_path / "train.en").open("a", encoding="utf-8") as f:
        f.write("one more line\n")
    with pytest.raises(DataError, match=r"train\.en: sha256 .* differs from the recorded"):
        corpus.verify(tmp_path)
