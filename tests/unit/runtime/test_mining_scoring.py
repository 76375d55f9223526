"""Margin scoring and retrieval on arrays (runtime/mining/scoring.py) against LASER's formula by hand."""

from __future__ import annotations

import numpy as np
import pytest

from xalign.runtime.mining.neighbours import Neighbours
from xalign.runtime.mining.scoring import (
    Candidates,
    MinedPair,
    PairArrays,
    best_candidates,
    neighbourhood_means,
    retrieve,
    score_neighbours,
)

# Two x and three y sentences with cosines
#          y0   y1   y2
#     x0  0.9  0.5  0.2
#     x1  0.6  0.7  0.1
# and k = 2, written as each side's two nearest neighbours in the other, best first.
X2Y = Neighbours(np.array([[0.9, 0.5], [0.7, 0.6]], np.float32), np.array([[0, 1], [1, 0]], np.int64))
Y2X = Neighbours(
    np.array([[0.9, 0.6], [0.7, 0.5], [0.2, 0.1]], np.float32), np.array([[0, 1], [1, 0], [0, 1]], np.int64)
)
# LASER: mean_k of x0 = (0.9 + 0.5) / 2 = 0.7, of x1 = 0.65; of y0 = (0.9 + 0.6) / 2 = 0.75, y1 = 0.6, y2 = 0.15.
X_MEAN, Y_MEAN = [0.7, 0.65], [0.75, 0.6, 0.15]
# Ratio score a / ((mean_x + mean_y) / 2) of every candidate pair:
RATIO = {
    (0, 0): 0.9 / 0.725,  # 1.2414
    (0, 1): 0.5 / 0.65,  # 0.7692
    (1, 0): 0.6 / 0.7,  # 0.8571
    (1, 1): 0.7 / 0.625,  # 1.12
    (0, 2): 0.2 / 0.425,  # 0.4706
    (1, 2): 0.1 / 0.4,  # 0.25
}


def test_neighbourhood_means() -> None:
    np.testing.assert_allclose(neighbourhood_means(X2Y), X_MEAN, rtol=1e-6)
    np.testing.assert_allclose(neighbourhood_means(Y2X), Y_MEAN, rtol=1e-6)


def test_best_candidates_by_ratio_distance_and_absolute() -> None:
    x_mean, y_mean = neighbourhood_means(X2Y), neighbourhood_means(Y2X)
    fwd = best_candidates(X2Y, x_mean, y_mean, "ratio")
    np.testing.assert_array_equal(fwd.index, [0, 1])
    np.testing.assert_allclose(fwd.score, [RATIO[0, 0], RATIO[1, 1]], rtol=1e-6)
    np.testing.assert_allclose(fwd.cosine, [0.9, 0.7], rtol=1e-6)
    bwd = best_candidates(Y2X, y_mean, x_mean, "ratio")
    np.testing.assert_array_equal(bwd.index, [0, 1, 0])  # y2's best is x0: 0.4706 > 0.25
    np.testing.assert_allclose(bwd.score, [RATIO[0, 0], RATIO[1, 1], RATIO[0, 2]], rtol=1e-6)
    # Distance a - b: x0→y0 0.9 - 0.725 = 0.175 beats x0→y1 0.5 - 0.65; x1→y1 0.7 - 0.625 = 0.075.
    np.testing.assert_allclose(best_candidates(X2Y, x_mean, y_mean, "distance").score, [0.175, 0.075], atol=1e-6)
    np.testing.assert_allclose(best_candidates(X2Y, x_mean, y_mean, "absolute").score, [0.9, 0.7], atol=1e-6)


@pytest.mark.parametrize(
    ("retrieval", "want"),
    [
        ("forward", [(0, 0), (1, 1)]),
        ("backward", [(0, 0), (1, 1), (0, 2)]),
        ("intersect", [(0, 0), (1, 1)]),
        ("max", [(0, 0), (1, 1)]),  # (0, 2) loses: x0 is taken by the better (0, 0)
    ],
)
def test_retrieval_modes_on_the_example(retrieval: str, want: list[tuple[int, int]]) -> None:
    pairs = score_neighbours(X2Y, Y2X, "ratio", retrieval)  # type: ignore[arg-type]
    assert list(zip(pairs.src.tolist(), pairs.tgt.tolist(), strict=True)) == want
    np.testing.assert_allclose(pairs.score, [RATIO[p] for p in want], rtol=1e-6)


def _candidates(index: list[int], score: list[float]) -> Candidates:
    scores = np.array(score, np.float32)
    return Candidates(np.array(index, np.int64), scores, scores / 2)


# x0→y0 1.5, x1→y0 1.2, x2→y1 1.1; y0→x0 1.5, y1→x1 1.3.
FWD, BWD = _candidates([0, 0, 1], [1.5, 1.2, 1.1]), _candidates([0, 1], [1.5, 1.3])


def test_intersect_and_greedy_max_differ_from_the_union() -> None:
    assert retrieve(FWD, BWD, "intersect").to_pairs() == [MinedPair(0, 0, 1.5, 0.75)]
    # max: (0,0) twice → once; (1,1) 1.3; (1,0) 1.2 has x1 taken; (2,1) 1.1 has y1 taken.
    got = retrieve(FWD, BWD, "max")
    assert list(zip(got.src.tolist(), got.tgt.tolist(), strict=True)) == [(0, 0), (1, 1)]


def test_threshold_compares_as_python_floats() -> None:
    # float32(1.05) is 1.04999995...: below the Python float 1.05, though equal to it once cast to float32.
    fwd = _candidates([0], [1.05])
    bwd = _candidates([0], [1.05])
    assert len(retrieve(fwd, bwd, "forward", threshold=1.05)) == 0
    assert len(retrieve(fwd, bwd, "forward", threshold=float(np.float32(1.05)))) == 1


def test_equal_scores_sort_by_src_then_tgt() -> None:
    fwd = _candidates([2, 0, 1], [1.0, 1.0, 1.0])
    got = retrieve(fwd, _candidates([1, 2, 0], [1.0, 1.0, 1.0]), "forward")
    assert got.src.tolist() == [0, 1, 2] and got.tgt.tolist() == [2, 0, 1]


def test_missing_neighbours_are_never_chosen() -> None:
    neigh = Neighbours(np.array([[0.8, -np.inf], [-np.inf, -np.inf]], np.float32), np.array([[1, -1], [-1, -1]]))
    np.testing.assert_allclose(neighbourhood_means(neigh), [0.8, 0.0])
    best = best_candidates(neigh, np.array([0.8, 0.0], np.float32), np.array([0.5, 0.6], np.float32), "ratio")
    assert best.index.tolist() == [1, -1] and best.score[1] == -np.inf
    pairs = retrieve(best, _candidates([0, 0], [1.0, 0.9]), "forward")
    assert pairs.src.tolist() == [0]  # x1 found nothing, so it has no pair


def test_pair_arrays() -> None:
    pairs = PairArrays(np.array([3]), np.array([4]), np.array([1.25], np.float32), np.array([0.5], np.float32))
    assert pairs.to_pairs() == [MinedPair(3, 4, 1.25, 0.5)] and len(PairArrays.empty()) == 0
    with pytest.raises(ValueError, match="same length"):
        PairArrays(np.array([3]), np.array([4, 5]), np.zeros(1, np.float32), np.zeros(1, np.float32))
