"""Reading a mining job's sides (runtime/mining/corpus.py), its shard layout and its executor seam."""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from xalign.runtime.mining.corpus import CorpusError, Side, TextFormat, describe_file, read_sentences, side_files, unify
from xalign.runtime.mining.executor import LocalExecutor
from xalign.runtime.mining.shards import ShardFiles, identity_changes


def _side(name: str, paths: list[Path], fmt: TextFormat = "plain") -> Side:
    counted: list[int] = []
    side = unify(name, [describe_file(p) for p in side_files(paths, name)], fmt, counted.append)
    assert sum(counted) == side.lines
    return side


def test_files_gz_and_line_counts(tmp_path: Path) -> None:
    plain = tmp_path / "a.txt"
    plain.write_bytes(b"\xef\xbb\xbfone\r\ntwo\n\n  \nthree")  # BOM, CRLF, blank lines, no final newline
    packed = tmp_path / "b.txt.gz"
    packed.write_bytes(gzip.compress(b"four\nfive\n"))
    info = describe_file(packed)
    assert info.sha256 == hashlib.sha256(packed.read_bytes()).hexdigest() and info.bytes == packed.stat().st_size
    assert (describe_file(plain).lines, info.lines) == (5, 2)
    assert [s.text for s in read_sentences([plain, packed], "plain")] == ["one", "two", "three", "four", "five"]


def test_a_folder_is_its_visible_files_sorted_by_name(tmp_path: Path) -> None:
    for name in ("shard-10.txt", "shard-02.txt", ".hidden"):
        (tmp_path / name).write_text(name + "\n", encoding="utf-8")
    assert [p.name for p in side_files([tmp_path], "src")] == ["shard-02.txt", "shard-10.txt"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="holds no file"):
        side_files([tmp_path / "empty"], "src")
    with pytest.raises(CorpusError, match="no input file"):
        side_files([], "tgt")


def test_unify_numbers_distinct_texts_in_first_occurrence_order(tmp_path: Path) -> None:
    path = tmp_path / "s.txt"
    path.write_text("b\na\nb\n\nc\na\n", encoding="utf-8")
    side = _side("src", [path])
    assert (side.sentences, side.unique, side.lines) == (5, 3, 6)
    assert list(side.texts()) == ["b", "a", "c"]
    assert side.texts_at([2, 0]) == {0: "b", 2: "c"} and side.texts_at([]) == {}
    assert side.single_ids is None
    path.write_text("b\na\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="changed while the job read them"):
        list(side.texts())


def test_ids_keep_one_id_per_text_and_none_for_a_text_under_several(tmp_path: Path) -> None:
    path = tmp_path / "s.ids"
    path.write_text("x1\t hello \nx2\tworld\nx3\thello\nx4\t\n", encoding="utf-8")
    side = _side("src", [path], "ids")
    assert list(side.texts()) == ["hello", "world"]  # stripped as LASER's bucc.py compares them; x4 is blank
    assert side.single_ids == (None, "x2")


def test_shard_offsets_and_identity_changes(tmp_path: Path) -> None:
    files = ShardFiles(tmp_path, rows=10, size=4, dim=3)
    assert files.count == 3 and files.offsets.tolist() == [0, 4, 8, 10]
    np.save(files.path(1), np.zeros((4, 3), np.float32))
    np.save(files.path(2), np.zeros((3, 3), np.float32))  # wrong shape: not a finished shard
    assert files.missing() == [0, 2]
    old = {"model": "m:1", "src file 1 sha256": "a" * 64}
    new: dict[str, str | int] = {"model": "m:2", "src file 1 sha256": "a" * 64, "shard size": 4}
    assert identity_changes(old, new, {"model": "model"}) == ["model: m:1 → m:2", "shard size: (none) → 4"]


def test_the_local_executor_takes_a_task_only_when_a_result_is_wanted() -> None:
    taken: list[int] = []

    def tasks() -> Iterator[int]:
        for i in range(3):
            taken.append(i)
            yield i

    results = LocalExecutor().map(lambda i: i * 10, tasks(), "test")
    assert next(results) == 0 and taken == [0]
    assert list(results) == [10, 20] and taken == [0, 1, 2]
