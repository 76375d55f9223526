"""The streaming mining engine equals the one-shot implementation it replaced, for every setting.

``_reference_mine`` below is ``runtime/margin.py``'s ``mine`` as it stood before the engine in
``runtime/mining/`` (one exact ``IndexFlatIP`` search per direction over everything, one ``MinedPair`` per
candidate), copied here verbatim apart from names. The engine must give the same pairs in the same order,
with the same scores up to float32 rounding (a chunked inner product may round its last bit differently,
and a distance margin of cosines near 1 keeps that absolute error of a few 1e-7).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import faiss
import numpy as np
import pytest

from xalign.runtime.margin import MiningConfig, l2_normalize, mine, mine_arrays
from xalign.runtime.mining.scoring import Candidates, Margin, MinedPair, PairArrays, Retrieval, margin_scores

MARGINS: tuple[Margin, ...] = ("ratio", "distance", "absolute")
RETRIEVALS: tuple[Retrieval, ...] = ("forward", "backward", "intersect", "max")
VECTORS = Path(__file__).resolve().parents[2] / "data" / "mining_mini" / "bucc_tiny_vectors.npz"


# --- the implementation before the engine (reference) -------------------------------------------------


def _ref_knn(x: np.ndarray, y: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    k_eff = min(k, y.shape[0])
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(np.ascontiguousarray(y, dtype=np.float32))
    sims, ids = index.search(np.ascontiguousarray(x, dtype=np.float32), k_eff)
    return sims.astype(np.float32, copy=False), ids.astype(np.int64, copy=False)


def _ref_select_best(
    sims: np.ndarray, ids: np.ndarray, query_mean: np.ndarray, other_mean: np.ndarray, margin: Margin
) -> Candidates:
    scores = margin_scores(sims, query_mean[:, None], other_mean[ids], margin)
    best = scores.argmax(axis=1)
    rows = np.arange(sims.shape[0])
    return Candidates(index=ids[rows, best], score=scores[rows, best], cosine=sims[rows, best])


def _ref_pairs(src: np.ndarray, tgt: np.ndarray, best: Candidates) -> list[MinedPair]:
    return [
        MinedPair(src=int(s), tgt=int(t), score=float(sc), cosine=float(c))
        for s, t, sc, c in zip(src, tgt, best.score, best.cosine, strict=True)
    ]


def _ref_greedy(candidates: list[MinedPair]) -> list[MinedPair]:
    order = np.argsort(-np.array([p.score for p in candidates]), kind="stable")
    seen_src: set[int] = set()
    seen_tgt: set[int] = set()
    kept: list[MinedPair] = []
    for i in order:
        pair = candidates[int(i)]
        if pair.src not in seen_src and pair.tgt not in seen_tgt:
            seen_src.add(pair.src)
            seen_tgt.add(pair.tgt)
            kept.append(pair)
    return kept


def _reference_mine(x: np.ndarray, y: np.ndarray, config: MiningConfig) -> list[MinedPair]:
    x2y_sims, x2y_ids = _ref_knn(x, y, config.k)
    y2x_sims, y2x_ids = _ref_knn(y, x, config.k)
    x_mean, y_mean = x2y_sims.mean(axis=1).astype(np.float32), y2x_sims.mean(axis=1).astype(np.float32)
    fwd = _ref_select_best(x2y_sims, x2y_ids, x_mean, y_mean, config.margin)
    bwd = _ref_select_best(y2x_sims, y2x_ids, y_mean, x_mean, config.margin)
    forward = _ref_pairs(np.arange(len(fwd.index)), fwd.index, fwd)
    backward = _ref_pairs(bwd.index, np.arange(len(bwd.index)), bwd)
    pairs = {
        "forward": lambda: forward,
        "backward": lambda: backward,
        "intersect": lambda: [p for p in forward if int(bwd.index[p.tgt]) == p.src],
        "max": lambda: _ref_greedy(forward + backward),
    }[config.retrieval]()
    if config.threshold is not None:
        threshold = config.threshold
        pairs = [p for p in pairs if p.score >= threshold]
    return sorted(pairs, key=lambda p: (-p.score, p.src, p.tgt))


# --- comparisons ------------------------------------------------------------------------------------


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    return l2_normalize(rng.standard_normal((n, d)))


def _correlated(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """x (53, 16) and y (47, 16) where y[:35] are noisy copies of x[:35]: real pairs among noise."""
    rng = np.random.default_rng(seed)
    x = _unit(rng, 53, 16)
    return x, np.concatenate([l2_normalize(x[:35] + 0.5 * rng.standard_normal((35, 16))), _unit(rng, 12, 16)])


def _median_score(x: np.ndarray, y: np.ndarray, margin: Margin, retrieval: Retrieval) -> float:
    """A threshold about half the pairs fail: midway between the two scores around the median.

    Midway, not one of the scores: a chunked search may round a cosine's last bit the other way, and a
    score that lies exactly on the threshold would then fall on either side of it.
    """
    scores = np.unique([p.score for p in _reference_mine(x, y, MiningConfig(margin=margin, retrieval=retrieval))])
    mid = len(scores) // 2
    return float((scores[mid - 1] + scores[mid]) / 2)


def _assert_same(got: PairArrays, want: list[MinedPair]) -> None:
    assert list(zip(got.src.tolist(), got.tgt.tolist(), strict=True)) == [(p.src, p.tgt) for p in want]
    np.testing.assert_allclose(got.score, [p.score for p in want], rtol=1e-6, atol=5e-7)
    np.testing.assert_allclose(got.cosine, [p.cosine for p in want], rtol=1e-6, atol=5e-7)


@pytest.mark.parametrize(
    ("margin", "retrieval", "thresholded"), list(itertools.product(MARGINS, RETRIEVALS, (False, True)))
)
def test_engine_matches_the_one_shot_implementation(margin: Margin, retrieval: Retrieval, thresholded: bool) -> None:
    x, y = _correlated(seed=7)
    threshold = _median_score(x, y, margin, retrieval) if thresholded else None
    config = MiningConfig(margin=margin, k=4, retrieval=retrieval, threshold=threshold)
    want = _reference_mine(x, y, config)
    # 53 and 47 rows: chunks of 7 and 20 split both sides raggedly; 64 holds each side whole.
    for chunk_rows in (7, 20, 64):
        _assert_same(mine_arrays(x, y, config, chunk_rows=chunk_rows), want)
    if thresholded:
        assert 0 < len(want) < len(_reference_mine(x, y, MiningConfig(margin=margin, retrieval=retrieval)))


@pytest.mark.parametrize(("margin", "retrieval"), list(itertools.product(MARGINS, RETRIEVALS)))
def test_engine_matches_on_real_sentences(margin: Margin, retrieval: Retrieval) -> None:
    # Embeddings of real BUCC lines by an untrained model: all cosines within 0.96..1.0, close margins.
    stored = np.load(VECTORS)
    de, en = stored["de"], stored["en"]  # (100, 32), (90, 32)
    for threshold in (None, _median_score(de, en, margin, retrieval)):
        config = MiningConfig(margin=margin, k=4, retrieval=retrieval, threshold=threshold)
        want = _reference_mine(de, en, config)
        for chunk_rows in (13, 32, 128):
            _assert_same(mine_arrays(de, en, config, chunk_rows=chunk_rows), want)


@pytest.mark.parametrize("k", [1, 3, 9])
def test_k_and_clipping_match(k: int) -> None:
    rng = np.random.default_rng(k)
    x, y = _unit(rng, 11, 8), _unit(rng, 6, 8)  # k = 9 exceeds y's 6 rows and is clipped
    for retrieval in RETRIEVALS:
        config = MiningConfig(k=k, retrieval=retrieval)
        _assert_same(mine_arrays(x, y, config, chunk_rows=4), _reference_mine(x, y, config))


@pytest.mark.parametrize("retrieval", RETRIEVALS)
def test_a_score_on_the_threshold_is_kept(retrieval: Retrieval) -> None:
    # With each side in one chunk the engine's search is the reference's, to the bit: a threshold equal
    # to a score keeps that pair (>=), in every retrieval mode.
    x, y = _correlated(seed=5)
    scores = [p.score for p in _reference_mine(x, y, MiningConfig(retrieval=retrieval))]
    config = MiningConfig(retrieval=retrieval, threshold=float(np.sort(scores)[len(scores) // 2]))
    want = _reference_mine(x, y, config)
    got = mine_arrays(x, y, config, chunk_rows=64)
    assert got.to_pairs() == want and float(got.score.min()) == config.threshold


def test_mine_is_mine_arrays_as_objects() -> None:
    x, y = _correlated(seed=2)
    arrays = mine_arrays(x, y, MiningConfig(retrieval="max"))
    pairs = mine(x, y, MiningConfig(retrieval="max"))
    assert arrays.to_pairs() == pairs
    assert all(type(p.src) is int and type(p.score) is float for p in pairs)


def test_empty_sides_give_empty_arrays() -> None:
    x = _unit(np.random.default_rng(0), 4, 8)
    for a, b in ((x, np.zeros((0, 8), np.float32)), (np.zeros((0, 8), np.float32), x), ([], x)):
        got = mine_arrays(a, b)
        assert len(got) == 0 and got.src.dtype == np.int64 and got.score.dtype == np.float32
