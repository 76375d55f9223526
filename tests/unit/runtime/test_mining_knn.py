"""Exact streamed kNN (runtime/mining/neighbours.py): brute-force equality, tie order, bounded blocks."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from xalign.runtime.margin import l2_normalize
from xalign.runtime.mining import neighbours
from xalign.runtime.mining.neighbours import Neighbours, knn_block, knn_chunked, merge_neighbours


def _unit(seed: int, n: int, d: int) -> np.ndarray:
    return l2_normalize(np.random.default_rng(seed).standard_normal((n, d)))


def _brute_force(q: np.ndarray, b: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(sims, ids) of the k largest inner products per row, in float64, ties by lower id."""
    sim = q.astype(np.float64) @ b.astype(np.float64).T  # (n, m)
    ids = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sim, ids, axis=1), ids


def test_knn_block_is_the_brute_force_top_k() -> None:
    q, b = _unit(0, 30, 12), _unit(1, 25, 12)
    got = knn_block(q, b, 5)
    sims, ids = _brute_force(q, b, 5)
    assert got.sims.dtype == np.float32 and got.ids.dtype == np.int64 and got.sims.shape == (30, 5)
    np.testing.assert_array_equal(got.ids, ids)
    np.testing.assert_allclose(got.sims, sims, atol=1e-6)


def test_knn_block_offsets_ids_and_clips_k() -> None:
    q, b = _unit(0, 4, 6), _unit(1, 3, 6)
    got = knn_block(q, b, 10, base_offset=100)  # k = 10 > 3 rows: clipped, as LASER does
    assert got.k == 3
    np.testing.assert_array_equal(got.ids, _brute_force(q, b, 3)[1] + 100)


def test_empty_sides() -> None:
    b = _unit(1, 3, 6)
    assert knn_block(np.zeros((0, 6), np.float32), b, 2).sims.shape == (0, 2)
    assert knn_block(b, np.zeros((0, 6), np.float32), 2).ids.shape == (3, 0)
    assert knn_chunked(np.zeros((0, 6), np.float32), b, 2, 2).sims.shape == (0, 2)
    assert knn_chunked(b, np.zeros((0, 6), np.float32), 2, 2).ids.shape == (3, 0)


def test_merge_keeps_the_k_best_ties_by_lower_id() -> None:
    a = Neighbours(np.array([[0.9, 0.5]], np.float32), np.array([[7, 3]], np.int64))
    b = Neighbours(np.array([[0.5, 0.4]], np.float32), np.array([[1, 2]], np.int64))
    merged = merge_neighbours(a, b, 3)
    np.testing.assert_array_equal(merged.ids, [[7, 1, 3]])  # 0.5 twice: id 1 before id 3
    np.testing.assert_array_equal(merged.sims, np.array([[0.9, 0.5, 0.5]], np.float32))
    assert merge_neighbours(a, b, 10).k == 4
    with pytest.raises(ValueError, match="queries"):
        merge_neighbours(a, Neighbours(np.zeros((2, 1), np.float32), np.zeros((2, 1), np.int64)), 2)


@pytest.mark.parametrize("chunk_rows", [1, 6, 17, 64])
def test_chunked_equals_one_block(chunk_rows: int) -> None:
    # 40 queries and 33 base rows: chunks of 6 and 17 leave ragged last chunks on both sides.
    q, b = _unit(2, 40, 8), _unit(3, 33, 8)
    whole, chunked = knn_block(q, b, 4), knn_chunked(q, b, 4, chunk_rows)
    np.testing.assert_array_equal(chunked.ids, whole.ids)
    np.testing.assert_allclose(chunked.sims, whole.sims, atol=1e-6)


def test_identical_base_rows_tie_by_lower_id_across_chunks() -> None:
    b = _unit(4, 12, 8)
    b[9] = b[2]  # rows 2 and 9 identical: every query ties on them
    q = b[[2, 5]]
    for chunk_rows in (3, 5, 12):  # 2 and 9 in different chunks (3, 5) or the same one (12)
        got = knn_chunked(q, b, 2, chunk_rows)
        np.testing.assert_array_equal(got.ids[0], [2, 9])
        assert got.sims[0, 0] == got.sims[0, 1]


def test_blocks_never_exceed_chunk_rows_squared(monkeypatch: pytest.MonkeyPatch) -> None:
    q, b = _unit(5, 50, 8), _unit(6, 45, 8)
    shapes: list[tuple[int, int]] = []
    real_block = neighbours.knn_block

    def recording(queries: np.ndarray, base: np.ndarray, k: int, base_offset: int = 0) -> Neighbours:
        shapes.append((len(queries), len(base)))
        return real_block(queries, base, k, base_offset)

    monkeypatch.setattr(neighbours, "knn_block", recording)
    got = knn_chunked(q, b, 3, chunk_rows=16)
    assert max(r for r, _ in shapes) <= 16 and max(c for _, c in shapes) <= 16
    assert sum(r * c for r, c in shapes) == 50 * 45  # every (query, base) pair searched exactly once
    np.testing.assert_array_equal(got.ids, real_block(q, b, 3).ids)


def test_peak_memory_is_bounded_by_the_chunk_not_n_by_m() -> None:
    q, b = _unit(7, 1500, 16), _unit(8, 1400, 16)
    full_matrix = 1500 * 1400 * 4  # 8.4 MB: what a one-shot similarity matrix would take
    tracemalloc.start()
    try:
        knn_chunked(q, b, 4, chunk_rows=100)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Results (1500, 4) twice plus (100, 8) merge buffers: far below even a tenth of the full matrix.
    assert peak < full_matrix / 10, peak


def test_memory_mapped_sides_are_read_in_chunks(tmp_path: Path) -> None:
    q, b = _unit(9, 20, 8), _unit(10, 30, 8)
    np.save(tmp_path / "q.npy", q)
    np.save(tmp_path / "b.npy", b)
    mapped = knn_chunked(np.load(tmp_path / "q.npy", mmap_mode="r"), np.load(tmp_path / "b.npy", mmap_mode="r"), 3, 7)
    np.testing.assert_array_equal(mapped.ids, knn_chunked(q, b, 3, 7).ids)


def test_bad_arguments() -> None:
    b = _unit(1, 3, 6)
    with pytest.raises(ValueError, match="chunk_rows"):
        knn_chunked(b, b, 2, 0)
    with pytest.raises(ValueError, match="2-D"):
        knn_chunked(b[0], b, 2, 2)
    with pytest.raises(ValueError, match="shape"):
        Neighbours(np.zeros((2, 2), np.float32), np.zeros((2, 3), np.int64))
