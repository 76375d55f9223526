"""Approximate kNN (runtime/mining/ann.py): exact when searched exhaustively, deterministic, misses masked."""

from __future__ import annotations

import numpy as np
import pytest

from xalign.runtime.margin import MiningConfig, l2_normalize, mine_arrays
from xalign.runtime.mining.ann import AnnParams, build_index, knn_ann, rescore, training_sample
from xalign.runtime.mining.neighbours import knn_chunked
from xalign.runtime.mining.scoring import neighbourhood_means, score_neighbours


def _unit(seed: int, n: int, d: int) -> np.ndarray:
    return l2_normalize(np.random.default_rng(seed).standard_normal((n, d)))


BASE, QUERIES = _unit(0, 300, 16), _unit(1, 60, 16)


def _recall(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.mean([len(set(g) & set(w)) / len(w) for g, w in zip(got.tolist(), want.tolist(), strict=True)]))


def test_ivf_probing_every_list_is_exact() -> None:
    index = build_index(BASE, "ivf", AnnParams(nlist=8))
    got, exact = knn_ann(index, QUERIES, 5, nprobe=8, chunk_rows=25), knn_chunked(QUERIES, BASE, 5)
    np.testing.assert_array_equal(got.ids, exact.ids)
    np.testing.assert_allclose(got.sims, exact.sims, atol=1e-6)


def test_hnsw_with_a_large_ef_search_is_exact() -> None:
    index = build_index(BASE, "hnsw", AnnParams(hnsw_m=16, ef_construction=100))
    got, exact = knn_ann(index, QUERIES, 5, ef_search=300), knn_chunked(QUERIES, BASE, 5)
    assert _recall(got.ids, exact.ids) == 1.0
    np.testing.assert_array_equal(got.ids, exact.ids)


def test_ivfpq_with_rescoring_finds_the_exact_neighbours() -> None:
    # 16 sub-quantizers of one dimension each: a fine code, so the ranking is close to exact.
    index = build_index(BASE, "ivfpq", AnnParams(nlist=4, pq_m=16, pq_bits=8))
    found = rescore(knn_ann(index, QUERIES, 5, nprobe=4), QUERIES, BASE)
    exact = knn_chunked(QUERIES, BASE, 5)
    assert _recall(found.ids, exact.ids) >= 0.95
    # Rescored similarities are the exact inner products of the ids found, best first.
    np.testing.assert_allclose(found.sims, np.einsum("nd,nkd->nk", QUERIES, BASE[found.ids]), atol=1e-6)
    assert (np.diff(found.sims, axis=1) <= 0).all()


def test_mining_on_exhaustive_ann_equals_exact_mining() -> None:
    x, y = QUERIES, l2_normalize(QUERIES[:50] + 0.5 * np.random.default_rng(2).standard_normal((50, 16)))
    params = AnnParams(nlist=4)
    x2y = knn_ann(build_index(y, "ivf", params), x, 4, nprobe=4)
    y2x = knn_ann(build_index(x, "ivf", params), y, 4, nprobe=4)
    for retrieval in ("forward", "backward", "intersect", "max"):
        got = score_neighbours(x2y, y2x, "ratio", retrieval)
        want = mine_arrays(x, y, MiningConfig(retrieval=retrieval))
        np.testing.assert_array_equal(got.src, want.src)
        np.testing.assert_array_equal(got.tgt, want.tgt)
        np.testing.assert_allclose(got.score, want.score, rtol=1e-6)


def test_same_seed_same_index() -> None:
    params = AnnParams(nlist=16, train_rows=120, seed=3)
    a = knn_ann(build_index(BASE, "ivf", params), QUERIES, 4, nprobe=2)
    b = knn_ann(build_index(BASE, "ivf", params), QUERIES, 4, nprobe=2)
    np.testing.assert_array_equal(a.ids, b.ids)
    sample = training_sample(BASE, 120, seed=3)
    assert sample.shape == (120, 16) and np.array_equal(sample, training_sample(BASE, 120, seed=3))
    assert not np.array_equal(sample, training_sample(BASE, 120, seed=4))
    assert training_sample(BASE, 1000, seed=3).shape == (300, 16)  # fewer rows than asked: all of them


def test_neighbours_not_found_are_masked() -> None:
    # 40 vectors in 10 lists, one list probed, 8 neighbours asked: most queries find fewer than 8.
    base = BASE[:40]
    got = knn_ann(build_index(base, "ivf", AnnParams(nlist=10)), base, 8, nprobe=1)
    missing = got.ids < 0
    assert missing.any() and (got.sims[missing] == -np.inf).all() and (got.ids[:, 0] >= 0).all()
    want = [got.sims[i][~missing[i]].mean() for i in range(len(got))]
    np.testing.assert_allclose(neighbourhood_means(got), want, rtol=1e-6)
    pairs = score_neighbours(got, got, "ratio", "max")
    assert len(pairs) > 0 and (pairs.src >= 0).all() and (pairs.tgt >= 0).all()
    assert np.isfinite(pairs.score).all()


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="kind"):
        build_index(BASE, "lsh")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="divide"):
        build_index(BASE, "ivfpq", AnnParams(pq_m=5))
    with pytest.raises(ValueError, match="non-empty"):
        build_index(np.zeros((0, 16), np.float32), "ivf")
    index = build_index(BASE, "hnsw")
    assert knn_ann(index, QUERIES[:0], 3).ids.shape == (0, 3)
    with pytest.raises(ValueError, match="chunk_rows"):
        knn_ann(index, QUERIES, 3, chunk_rows=0)
