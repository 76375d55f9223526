"""The on-disk format of indexes: records round-trip, a torn tail at any byte is cut off, generations switch
atomically, and interrupted creates, deletes and re-embeddings leave nothing behind."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from xalign.runtime.margin import l2_normalize
from xalign.service.search.index_store import IndexExistsError, IndexStore, StaleGenerationError, StoredIndex
from xalign.service.search.persistence import IndexMeta, LogWriter, Record, encode_record, read_meta, replay

DIM = 8
RNG = np.random.default_rng(0)


def _vectors(n: int) -> np.ndarray:
    return l2_normalize(RNG.standard_normal((n, DIM)))


def _meta(name: str = "idx", kind: str = "flat") -> IndexMeta:
    return IndexMeta(name=name, model="tiny", model_version=1, dim=DIM, kind=kind)  # type: ignore[arg-type]


def _write_log(path: Path, batches: list[list[str]]) -> list[Record]:
    writer = LogWriter.create(path)
    records, first = [], 0
    for texts in batches:
        record = Record(first, _vectors(len(texts)), texts)
        writer.append(record)
        records.append(record)
        first += len(texts)
    writer.close()
    return records


def _same(a: list[Record], b: list[Record]) -> None:
    assert [r.first_id for r in a] == [r.first_id for r in b]
    assert [r.texts for r in a] == [r.texts for r in b]
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.vectors, y.vectors)


def test_records_round_trip(tmp_path: Path) -> None:
    batches = [["hello", "Grüße aus München", "日本語"], ["x" * 1000], ["", "a\nb"]]
    written = _write_log(tmp_path / "vectors-0.log", batches)
    _same(replay(tmp_path / "vectors-0.log", DIM), written)


def test_a_torn_tail_at_every_byte_is_cut_back_to_the_last_complete_record(tmp_path: Path) -> None:
    log = tmp_path / "vectors-0.log"
    written = _write_log(log, [["one", "two"], ["three"], ["four", "five", "six"]])
    full = log.read_bytes()
    complete = len(full) - len(encode_record(written[-1]))
    for cut in range(complete, len(full)):
        torn = tmp_path / f"torn-{cut}.log"
        torn.write_bytes(full[:cut])
        _same(replay(torn, DIM), written[:2])
        assert torn.stat().st_size == complete  # truncated on disk, so the next append starts clean


def test_a_corrupt_or_garbage_tail_is_dropped(tmp_path: Path) -> None:
    log = tmp_path / "vectors-0.log"
    written = _write_log(log, [["one"], ["two"]])
    data = bytearray(log.read_bytes())
    data[-3] ^= 0x40  # a flipped bit in the last record's texts: its checksum fails
    log.write_bytes(bytes(data) + b"\x00garbage")
    _same(replay(log, DIM), written[:1])


def test_appends_after_a_torn_tail_are_readable(tmp_path: Path) -> None:
    folder = tmp_path / "indexes"
    index = IndexStore(folder).create(_meta())
    index.append(["a", "b"], _vectors(2), generation=0)
    index.close()
    log = index.folder / "vectors-0.log"
    with log.open("ab") as out:
        out.write(b"XIR1\x10\x00")  # a header cut short by a crash
    reopened = StoredIndex.open(index.folder)
    assert reopened.append(["c"], _vectors(1), generation=0) == [2]
    reopened.close()
    assert StoredIndex.open(index.folder).texts() == ["a", "b", "c"]


def test_store_reopens_every_index_and_cleans_leftovers(tmp_path: Path) -> None:
    root = tmp_path / "indexes"
    store = IndexStore.open(root)
    assert not root.exists()  # nothing written until an index is created
    first = store.create(_meta("first"))
    store.create(_meta("second", "hnsw"))
    vectors = _vectors(5)
    assert first.append([f"t{i}" for i in range(5)], vectors, generation=0) == [0, 1, 2, 3, 4]
    with pytest.raises(IndexExistsError):
        store.create(_meta("first"))
    store.close()
    (root / ".tmp-third-123").mkdir()  # a create interrupted before its rename
    reopened = IndexStore.open(root)
    assert reopened.names() == ["first", "second"]
    assert not (root / ".tmp-third-123").exists()
    texts, stored, meta = reopened.get("first").contents()
    assert texts == [f"t{i}" for i in range(5)] and meta.kind == "flat"
    np.testing.assert_array_equal(stored, vectors)
    reopened.delete("second")
    assert IndexStore.open(root).names() == ["first"]


def test_an_unfinished_generation_is_discarded_and_a_committed_one_kept(tmp_path: Path) -> None:
    index = IndexStore(tmp_path).create(_meta())
    index.append(["a", "b"], _vectors(2), generation=0)
    new = index.begin_generation(model_version=2)
    new.append(["a", "b"], _vectors(2))
    index.close()
    shutil.copytree(index.folder, tmp_path / "crashed")  # a crash before the switch
    reopened = StoredIndex.open(tmp_path / "crashed")
    assert reopened.meta.model_version == 1 and reopened.texts() == ["a", "b"]
    assert sorted(p.name for p in (tmp_path / "crashed").glob("*.log")) == ["vectors-0.log"]

    live = StoredIndex.open(index.folder)  # deletes the unfinished log, as after a crash
    new = live.begin_generation(model_version=2)
    new.append(["a", "b"], _vectors(2))
    live.append(["c"], _vectors(1), generation=0)
    with pytest.raises(StaleGenerationError):
        live.commit_generation(new)  # "c" is not re-embedded yet: the switch must wait
    new.append(["c"], _vectors(1))
    live.commit_generation(new)
    assert read_meta(index.folder).generation == 1
    with pytest.raises(StaleGenerationError):
        live.append(["d"], _vectors(1), generation=0)  # embedded for the old version
    live.close()
    again = StoredIndex.open(index.folder)
    assert again.meta.model_version == 2 and again.texts() == ["a", "b", "c"]
    assert sorted(p.name for p in index.folder.glob("*.log")) == ["vectors-1.log"]
