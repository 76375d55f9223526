"""FAISS snapshots of indexes: every kind reopens from its snapshot plus the log tail exactly as from the whole
log; a snapshot that does not verify is ignored and the index rebuilt from the log; re-embedding generations
never reuse another generation's snapshot."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from xalign.runtime.margin import l2_normalize
from xalign.service.search.index_store import IndexStore, StoredIndex
from xalign.service.search.persistence import IndexMeta, LogPosition
from xalign.service.search.snapshot import SnapshotPolicy, read_snapshot, snapshot_name

DIM = 8
KINDS = {"flat": {}, "ivf": {"nlist": 4, "nprobe": 4, "train_size": 60}, "hnsw": {"m": 8}}
EVERY_50 = SnapshotPolicy(rows=50, build_s=0)


def _vectors(n: int, seed: int) -> np.ndarray:
    return l2_normalize(np.random.default_rng(seed).standard_normal((n, DIM))).astype(np.float32)


def _meta(kind: str, name: str = "idx") -> IndexMeta:
    return IndexMeta(name=name, model="tiny", model_version=1, dim=DIM, kind=kind, params=KINDS[kind])  # type: ignore[arg-type]


def _fill(index: StoredIndex, batches: list[int], seed: int = 0) -> np.ndarray:
    """Append batches of the given sizes; returns all their vectors (n, DIM)."""
    added = []
    for i, n in enumerate(batches):
        vectors = _vectors(n, seed + i)
        index.append([f"t{len(index.texts()) + j}" for j in range(n)], vectors, generation=index.meta.generation)
        added.append(vectors)
    return np.concatenate(added)


def _answers(index: StoredIndex) -> tuple[list[str], np.ndarray, list[list[tuple[int, float]]]]:
    texts, vectors, _ = index.contents()
    hits = index.search(_vectors(10, 99), 5, model_version=index.meta.model_version)
    return texts, vectors, [[(h.id, round(h.score, 5)) for h in row] for row in hits]


def _snapshot_rows(folder: Path) -> int | None:
    restored = read_snapshot(folder, StoredIndex.open(folder, SnapshotPolicy(0, 0)).meta, folder / "vectors-0.log")
    return None if restored is None else restored[2].rows


@pytest.mark.parametrize("kind", list(KINDS))
def test_snapshot_plus_tail_reopens_like_the_whole_log(tmp_path: Path, kind: str) -> None:
    index = IndexStore(tmp_path, EVERY_50).create(_meta(kind))
    vectors = _fill(index, [30, 30, 30, 7])  # a snapshot after 60 rows; 37 rows in the tail
    index.close(snapshot=False)  # as after a SIGKILL: the tail is only in the log
    assert _snapshot_rows(index.folder) == 60
    from_snapshot = StoredIndex.open(index.folder, SnapshotPolicy(0, 0))
    expected = _answers(from_snapshot)
    np.testing.assert_array_equal(expected[1], vectors)  # vectors read back out of FAISS
    from_snapshot.close(snapshot=False)
    (index.folder / snapshot_name(0)).unlink()
    from_log = StoredIndex.open(index.folder, SnapshotPolicy(0, 0))
    got = _answers(from_log)
    assert got[0] == expected[0] and got[2] == expected[2]
    np.testing.assert_array_equal(got[1], expected[1])
    assert from_log.append(["more"], _vectors(1, 7), generation=0) == [97]


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_clean_close_snapshots_everything_and_the_reopened_index_keeps_growing(tmp_path: Path, kind: str) -> None:
    index = IndexStore(tmp_path, SnapshotPolicy(0, 0)).create(_meta(kind))
    _fill(index, [40, 40])
    before = _answers(index)
    index.close()
    assert _snapshot_rows(index.folder) == 80
    reopened = StoredIndex.open(index.folder)
    after = _answers(reopened)
    assert after[0] == before[0] and after[2] == before[2]
    _fill(reopened, [5], seed=50)
    assert reopened.count == 85 and reopened.search(_vectors(1, 50), 1, 1)[0][0].id == 80


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],  # cut short
        lambda data: data[:100] + bytes([data[100] ^ 1]) + data[101:],  # a flipped bit in the FAISS bytes
        lambda data: data[:-30] + bytes([data[-30] ^ 1]) + data[-29:],  # a flipped bit in the header
        lambda _: b"",
    ],
)
def test_a_snapshot_that_does_not_verify_is_ignored(tmp_path: Path, damage, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    index = IndexStore(tmp_path, EVERY_50).create(_meta("ivf"))
    vectors = _fill(index, [60, 10])
    index.close(snapshot=False)
    path = index.folder / snapshot_name(0)
    path.write_bytes(damage(path.read_bytes()))
    with caplog.at_level(logging.WARNING, logger="xalign.service"):
        reopened = StoredIndex.open(index.folder, SnapshotPolicy(0, 0))
    assert "does not verify" in caplog.text
    np.testing.assert_array_equal(reopened.contents()[1], vectors)


def test_a_snapshot_of_another_log_is_ignored(tmp_path: Path) -> None:
    index = IndexStore(tmp_path, SnapshotPolicy(0, 0)).create(_meta("flat"))
    _fill(index, [20])
    index.close()
    log = index.folder / "vectors-0.log"
    log.write_bytes(b"")  # the same generation's log, written anew: the snapshot's rows are not in it
    assert StoredIndex.open(index.folder, SnapshotPolicy(0, 0)).count == 0
    assert read_snapshot(index.folder, _meta("flat"), log) is None


def test_half_written_and_other_generations_snapshots_go_on_open(tmp_path: Path) -> None:
    index = IndexStore(tmp_path, SnapshotPolicy(0, 0)).create(_meta("flat"))
    _fill(index, [5])
    index.close()
    for leftover in (".snapshot-0.tmp", snapshot_name(3)):
        (index.folder / leftover).write_bytes(b"partial")
    assert StoredIndex.open(index.folder).count == 5
    assert sorted(p.name for p in index.folder.iterdir()) == ["meta.json", snapshot_name(0), "vectors-0.log"]


def test_generations_never_share_snapshots(tmp_path: Path) -> None:
    index = IndexStore(tmp_path, EVERY_50).create(_meta("flat"))
    _fill(index, [60])
    new = index.begin_generation(model_version=2)
    new.append(index.texts(), _vectors(60, 5))  # a re-embedding: its own snapshot of generation 1
    assert (index.folder / snapshot_name(1)).is_file()
    index.discard_generation(new)
    assert not (index.folder / snapshot_name(1)).exists()
    new = index.begin_generation(model_version=2)
    reembedded = _vectors(60, 6)
    new.append(index.texts(), reembedded)
    index.commit_generation(new)
    assert sorted(p.name for p in index.folder.glob("snapshot-*")) == [snapshot_name(1)]
    index.close(snapshot=False)
    reopened = StoredIndex.open(index.folder)
    assert reopened.meta.model_version == 2
    np.testing.assert_array_equal(reopened.contents()[1], reembedded)


def test_a_failed_snapshot_does_not_fail_the_add(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    index = IndexStore(tmp_path, EVERY_50).create(_meta("flat"))

    def full_disk(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("xalign.service.search.index_store.write_snapshot", full_disk)
    assert index.append([f"t{i}" for i in range(60)], _vectors(60, 0), generation=0) == list(range(60))
    index.close(snapshot=False)
    assert StoredIndex.open(index.folder).count == 60


def test_the_policy() -> None:
    assert SnapshotPolicy(rows=10, build_s=0).due(10, 0.0) and not SnapshotPolicy(rows=10, build_s=0).due(9, 99.0)
    assert SnapshotPolicy(rows=0, build_s=5).due(1, 5.0) and not SnapshotPolicy(rows=0, build_s=5).due(0, 9.0)
    assert not SnapshotPolicy(rows=0, build_s=0).due(10**9, 1e9)
    assert LogPosition().last_offset == -1
