"""LASER margin mining: checked against a brute-force numpy transcription of LASER's mine_bitexts.py."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from xalign.runtime.margin import (
    Margin,
    MinedPair,
    MiningConfig,
    Retrieval,
    knn_means,
    l2_normalize,
    margin_scores,
    mine,
)

MARGINS: tuple[Margin, ...] = ("ratio", "distance", "absolute")
RETRIEVALS: tuple[Retrieval, ...] = ("forward", "backward", "intersect", "max")


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    v = rng.standard_normal((n, d))
    out: np.ndarray = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
    return out


def _reference(
    x: np.ndarray, y: np.ndarray, *, margin: str, k: int, retrieval: str, threshold: float | None
) -> list[tuple[int, int, float]]:
    """LASER's formula with a full similarity matrix and loops: (src, tgt, score) in score order."""
    sim = x.astype(np.float64) @ y.astype(np.float64).T  # (n, m)
    n, m = sim.shape
    kx, ky = min(k, m), min(k, n)
    x_mean = np.array([np.sort(sim[i])[::-1][:kx].mean() for i in range(n)])
    y_mean = np.array([np.sort(sim[:, j])[::-1][:ky].mean() for j in range(m)])

    def score(i: int, j: int) -> float:
        a, b = sim[i, j], (x_mean[i] + y_mean[j]) / 2
        return float({"ratio": a / b, "distance": a - b, "absolute": a}[margin])

    fwd = []
    for i in range(n):
        cands = np.argsort(-sim[i], kind="stable")[:kx]
        j = max(cands, key=lambda c: score(i, int(c)))
        fwd.append((i, int(j), score(i, int(j))))
    bwd = []
    for j in range(m):
        cands = np.argsort(-sim[:, j], kind="stable")[:ky]
        i = max(cands, key=lambda c: score(int(c), j))
        bwd.append((int(i), j, score(int(i), j)))

    if retrieval == "forward":
        pairs = fwd
    elif retrieval == "backward":
        pairs = bwd
    elif retrieval == "intersect":
        pairs = [p for p in fwd if bwd[p[1]][0] == p[0]]
    else:  # max: union, then greedy one-to-one by descending score
        pairs, seen_s, seen_t = [], set(), set()
        for s, t, sc in sorted(fwd + bwd, key=lambda p: -p[2]):
            if s not in seen_s and t not in seen_t:
                seen_s.add(s)
                seen_t.add(t)
                pairs.append((s, t, sc))
    if threshold is not None:
        pairs = [p for p in pairs if p[2] >= threshold]
    return sorted(pairs, key=lambda p: (-p[2], p[0], p[1]))


def _assert_same(got: list[MinedPair], want: list[tuple[int, int, float]]) -> None:
    assert [(p.src, p.tgt) for p in got] == [(s, t) for s, t, _ in want]
    np.testing.assert_allclose([p.score for p in got], [sc for _, _, sc in want], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("margin", "retrieval"), list(itertools.product(MARGINS, RETRIEVALS)))
def test_matches_brute_force_reference(margin: Margin, retrieval: Retrieval) -> None:
    rng = np.random.default_rng(7)
    # Correlated sides so that there are real pairs as well as noise: y[:30] are noisy copies of x[:30].
    x = _unit(rng, 40, 16)
    y = np.concatenate([l2_normalize(x[:30] + 0.6 * rng.standard_normal((30, 16))), _unit(rng, 25, 16)])
    got = mine(x, y, MiningConfig(margin=margin, k=4, retrieval=retrieval))
    _assert_same(got, _reference(x, y, margin=margin, k=4, retrieval=retrieval, threshold=None))
    sim = x @ y.T
    np.testing.assert_allclose([p.cosine for p in got], [sim[p.src, p.tgt] for p in got], atol=1e-5)


@pytest.mark.parametrize("retrieval", RETRIEVALS)
def test_threshold_filters_like_reference(retrieval: Retrieval) -> None:
    rng = np.random.default_rng(3)
    x, y = _unit(rng, 30, 8), _unit(rng, 20, 8)
    got = mine(x, y, MiningConfig(retrieval=retrieval, threshold=1.05))
    want = _reference(x, y, margin="ratio", k=4, retrieval=retrieval, threshold=1.05)
    _assert_same(got, want)
    assert all(p.score >= 1.05 for p in got)


def test_knn_means_match_reference() -> None:
    rng = np.random.default_rng(1)
    x, y = _unit(rng, 12, 6), _unit(rng, 9, 6)
    sim = x @ y.T
    x_mean, y_mean = knn_means(x, y, k=3)
    assert x_mean.shape == (12,) and y_mean.shape == (9,)
    np.testing.assert_allclose(x_mean, np.sort(sim, axis=1)[:, -3:].mean(axis=1), rtol=1e-5)
    np.testing.assert_allclose(y_mean, np.sort(sim, axis=0)[-3:, :].mean(axis=0), rtol=1e-5)


def test_margin_scores_formula() -> None:
    cos = np.array([[0.8, 0.5]], np.float32)
    xm = np.array([[0.6]], np.float32)
    ym = np.array([[0.4, 0.2]], np.float32)
    # b = (0.6 + 0.4) / 2 = 0.5 and (0.6 + 0.2) / 2 = 0.4
    np.testing.assert_allclose(margin_scores(cos, xm, ym, "ratio"), [[1.6, 1.25]], rtol=1e-6)
    np.testing.assert_allclose(margin_scores(cos, xm, ym, "distance"), [[0.3, 0.1]], atol=1e-6)
    np.testing.assert_allclose(margin_scores(cos, xm, ym, "absolute"), cos)


def test_handcrafted_permutation_is_recovered() -> None:
    eye = np.eye(4, dtype=np.float32)
    x = eye[:3]
    # y is x permuted (y0≈x2, y1≈x0, y2≈x1) with a little of the 4th axis mixed in.
    y = l2_normalize(eye[[2, 0, 1]] + 0.1 * eye[3])
    for retrieval in RETRIEVALS:
        got = mine(x, y, MiningConfig(k=2, retrieval=retrieval))
        assert sorted((p.src, p.tgt) for p in got) == [(0, 1), (1, 2), (2, 0)], retrieval
    # Hand computation, k=2: cos(true pair) = 1/sqrt(1.01) = c; other cosines are 0, so each mean is c/2,
    # b = c/2 and the ratio margin is exactly 2.
    got = mine(x, y, MiningConfig(k=2))
    np.testing.assert_allclose([p.score for p in got], [2.0, 2.0, 2.0], rtol=1e-5)
    np.testing.assert_allclose([p.cosine for p in got], [1 / np.sqrt(1.01)] * 3, rtol=1e-5)


def test_margin_beats_a_hub() -> None:
    # y0 is a "hub" at cosine 0.5 from every x; x0's true partner y1 is at 0.45/sqrt(1.2025) ≈ 0.41.
    # Plain cosine picks the hub. With k=2: mean(y0) = 0.5, mean(y1) ≈ 0.205, mean(x0) ≈ 0.455, so the
    # ratio margin is ≈ 1.05 for the hub and ≈ 1.24 for y1 (Artetxe & Schwenk's motivation for it).
    eye = np.eye(5, dtype=np.float32)
    x = eye[:4]
    y = l2_normalize(np.stack([eye[:4].sum(axis=0), 0.45 * eye[0] + eye[4]]))
    absolute = mine(x, y, MiningConfig(margin="absolute", k=2, retrieval="forward"))
    assert next(p.tgt for p in absolute if p.src == 0) == 0
    ratio = mine(x, y, MiningConfig(margin="ratio", k=2, retrieval="forward"))
    best = next(p for p in ratio if p.src == 0)
    assert best.tgt == 1
    assert best.score == pytest.approx(0.41036 / ((0.45518 + 0.20518) / 2), rel=1e-3)


def test_k_larger_than_either_side_is_clipped() -> None:
    rng = np.random.default_rng(5)
    x, y = _unit(rng, 3, 5), _unit(rng, 2, 5)
    for retrieval in RETRIEVALS:
        got = mine(x, y, MiningConfig(k=10, retrieval=retrieval))
        _assert_same(got, _reference(x, y, margin="ratio", k=10, retrieval=retrieval, threshold=None))
        assert all(0 <= p.tgt < 2 and 0 <= p.src < 3 for p in got)


def test_max_retrieval_is_one_to_one() -> None:
    rng = np.random.default_rng(11)
    got = mine(_unit(rng, 50, 4), _unit(rng, 30, 4), MiningConfig(retrieval="max"))
    assert len({p.src for p in got}) == len(got) == len({p.tgt for p in got})
    assert [p.score for p in got] == sorted((p.score for p in got), reverse=True)


def test_empty_side_gives_no_pairs() -> None:
    rng = np.random.default_rng(0)
    x = _unit(rng, 4, 8)
    assert mine(x, np.zeros((0, 8), np.float32)) == []
    assert mine(np.zeros((0, 8), np.float32), x) == []
    assert mine([], x) == []
    m0, m1 = knn_means(np.zeros((0, 8), np.float32), x)
    assert m0.shape == (0,) and m1.shape == (4,)


def test_unnormalised_input_is_refused() -> None:
    rng = np.random.default_rng(0)
    x = _unit(rng, 4, 8)
    with pytest.raises(ValueError, match=r"y rows must be L2-normalised"):
        mine(x, 3 * x)
    with pytest.raises(ValueError, match="NaN"):
        mine(x, np.full((2, 8), np.nan, np.float32))
    # l2_normalize is the explicit opt-in.
    assert len(mine(x, l2_normalize(3 * x))) == 4


def test_bad_shapes_and_config_are_refused() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="dimension"):
        mine(_unit(rng, 3, 8), _unit(rng, 3, 4))
    with pytest.raises(ValueError, match="2-D"):
        mine(np.ones(8, np.float32) / np.sqrt(8), _unit(rng, 3, 8))
    with pytest.raises(ValueError, match="k must be"):
        MiningConfig(k=0)
    with pytest.raises(ValueError, match="margin"):
        MiningConfig(margin="cosine")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="retrieval"):
        MiningConfig(retrieval="both")  # type: ignore[arg-type]
