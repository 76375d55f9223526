"""LASER's margin scoring and retrieval modes on arrays: everything of mining that follows the k-NN search.

Given the neighbours of x in y and of y in x (``runtime/mining/neighbours.py`` or ``ann.py``), this module
computes the neighbourhood means, each sentence's best candidate by margin score, and the pairs a
retrieval mode keeps, as in LASER's ``source/mine_bitexts.py`` (Artetxe & Schwenk, 2019):

* neighbourhood term ``b = (mean_k cos(x_i, NN_k(x_i)) + mean_k cos(y_j, NN_k(y_j))) / 2`` and score
  ``a / b`` (ratio), ``a - b`` (distance) or ``a`` (absolute) for a pair of cosine ``a``;
* ``forward`` keeps each x with its best y, ``backward`` each y with its best x, ``intersect`` the forward
  pairs that are also the backward best, ``max`` the union taken greedily by descending score so that
  every sentence is used at most once;
* the threshold keeps scores ``>= threshold`` in every mode, compared in float64 as Python floats are;
* results are sorted by descending score, ties by lower src, then lower tgt; ties among candidates keep
  the nearer neighbour, and the greedy ``max`` visits equal scores forward candidates first, lower row first.

All of it is vectorised over the rows; only ``max``'s greedy one-to-one walks the sorted candidate arrays
(at most n + m integers) in Python. ``runtime/margin.py`` wraps it for small inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from xalign.runtime.mining.neighbours import Neighbours

Margin = Literal["ratio", "distance", "absolute"]
Retrieval = Literal["forward", "backward", "intersect", "max"]

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class MinedPair:
    """One mined pair: row ``src`` of x, row ``tgt`` of y, its margin score and its plain cosine."""

    src: int
    tgt: int
    score: float
    cosine: float


@dataclass(frozen=True)
class Candidates:
    """For every query row, its best candidate among its k nearest neighbours.

    ``index`` (n,) int64 row of the other side (-1 when the query has no neighbour), ``score`` (n,) float32
    margin score, ``cosine`` (n,) float32.
    """

    index: IntArray
    score: FloatArray
    cosine: FloatArray


@dataclass(frozen=True)
class PairArrays:
    """Mined pairs as parallel arrays: ``src`` (p,) int64 rows of x, ``tgt`` (p,) int64 rows of y,
    ``score`` (p,) float32 margin scores, ``cosine`` (p,) float32."""

    src: IntArray
    tgt: IntArray
    score: FloatArray
    cosine: FloatArray

    def __post_init__(self) -> None:
        if not len(self.src) == len(self.tgt) == len(self.score) == len(self.cosine):
            raise ValueError("src, tgt, score and cosine must have the same length")

    def __len__(self) -> int:
        return len(self.src)

    @classmethod
    def empty(cls) -> PairArrays:
        """No pairs."""
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.float32))

    def take(self, rows: npt.NDArray[np.intp] | npt.NDArray[np.bool_]) -> PairArrays:
        """The pairs at ``rows`` (positions or a boolean mask), in that order."""
        return PairArrays(self.src[rows], self.tgt[rows], self.score[rows], self.cosine[rows])

    def to_pairs(self) -> list[MinedPair]:
        """One :class:`MinedPair` per row, in order (for callers that want objects; builds p of them)."""
        columns = (self.src.tolist(), self.tgt.tolist(), self.score.tolist(), self.cosine.tolist())
        return [MinedPair(s, t, sc, c) for s, t, sc, c in zip(*columns, strict=True)]


def neighbourhood_means(neigh: Neighbours) -> FloatArray:
    """LASER's neighbourhood term of each query: mean similarity to its k neighbours, (n,) float32.

    Neighbours an approximate search did not find (id -1) are left out; a row with none, or k = 0, is 0.
    """
    if neigh.k == 0:
        return np.zeros(len(neigh), np.float32)
    valid = neigh.ids >= 0  # (n, k)
    if valid.all():
        return np.asarray(neigh.sims.mean(axis=1), dtype=np.float32)
    total = np.where(valid, neigh.sims, np.float32(0)).sum(axis=1)  # (n,)
    return np.asarray(total / np.maximum(valid.sum(axis=1), 1), dtype=np.float32)


def apply_margin(cosine: FloatArray, neighbourhood: FloatArray, margin: Margin) -> FloatArray:
    """LASER's margin function on ``a`` = cosine and ``b`` = neighbourhood term (same shapes).

    As in LASER, ``ratio`` assumes b > 0, which holds for real sentence embeddings (their k nearest
    neighbours are positively similar); b ≤ 0 only arises with synthetic, near-orthogonal vectors.
    """
    if margin == "ratio":
        return cosine / neighbourhood
    if margin == "distance":
        return cosine - neighbourhood
    return cosine


def margin_scores(cosine: FloatArray, x_mean: FloatArray, y_mean: FloatArray, margin: Margin) -> FloatArray:
    """Margin score of pairs given their cosines and the means of their two members.

    ``cosine``, ``x_mean`` and ``y_mean`` broadcast together: e.g. cosine (n, k) of each x with its
    k candidates, x_mean (n, 1) and y_mean (n, k) gathered for those candidates. This is LASER's
    ``score()``: ``margin(a, (fwd_mean + bwd_mean) / 2)``.
    """
    # astype is a no-op at runtime (float32 stays float32); it tells the type checker so.
    return apply_margin(cosine, ((x_mean + y_mean) / 2).astype(np.float32, copy=False), margin)


def best_candidates(neigh: Neighbours, query_means: FloatArray, other_means: FloatArray, margin: Margin) -> Candidates:
    """Best of each query's k-NN candidates by margin score (LASER's ``score_candidates``).

    neigh (n, k) of the queries in the other side; query_means (n,) the queries' own neighbourhood means,
    other_means (m,) those of the other side. Ties keep the nearer neighbour (``argmax`` takes the first).
    """
    n = len(neigh)
    if neigh.k == 0:
        missing = np.full(n, -np.inf, np.float32)
        return Candidates(np.full(n, -1, np.int64), missing, missing.copy())
    scores = margin_scores(neigh.sims, query_means[:, None], other_means[neigh.ids], margin)  # (n, k)
    valid = neigh.ids >= 0  # (n, k); an id of -1 gathered other_means[-1] above, masked here
    if not valid.all():
        scores = np.where(valid, scores, np.float32(-np.inf))
    best = scores.argmax(axis=1)  # (n,)
    rows = np.arange(n)
    return Candidates(neigh.ids[rows, best], scores[rows, best], neigh.sims[rows, best])


def retrieve(fwd: Candidates, bwd: Candidates, retrieval: Retrieval, threshold: float | None = None) -> PairArrays:
    """The pairs ``retrieval`` keeps from the best candidates of x in y (``fwd``, n rows) and of y in x (``bwd``).

    Applies ``threshold`` (scores ``>= threshold``) and sorts by descending score, then src, then tgt.
    A pair's score is the same from both sides because the neighbourhood term is symmetric in x and y.
    """
    forward = _found(PairArrays(np.arange(len(fwd.index), dtype=np.int64), fwd.index, fwd.score, fwd.cosine))
    backward = _found(PairArrays(bwd.index, np.arange(len(bwd.index), dtype=np.int64), bwd.score, bwd.cosine))
    if retrieval == "forward":
        pairs = forward
    elif retrieval == "backward":
        pairs = backward
    elif retrieval == "intersect":
        pairs = forward.take(bwd.index[forward.tgt] == forward.src)
    else:
        pairs = greedy_one_to_one(_concat(forward, backward), len(fwd.index), len(bwd.index))
    if threshold is not None:
        # float64, as the comparison of a Python float: float32(threshold) could let a lower score pass.
        pairs = pairs.take(pairs.score.astype(np.float64) >= threshold)
    return pairs.take(np.lexsort((pairs.tgt, pairs.src, -pairs.score)))


def score_neighbours(
    x2y: Neighbours, y2x: Neighbours, margin: Margin, retrieval: Retrieval, threshold: float | None = None
) -> PairArrays:
    """Mine from the two k-NN results: x2y (n, k) neighbours of x in y, y2x (m, k') of y in x → pairs."""
    x_mean, y_mean = neighbourhood_means(x2y), neighbourhood_means(y2x)  # (n,), (m,)
    fwd = best_candidates(x2y, x_mean, y_mean, margin)
    bwd = best_candidates(y2x, y_mean, x_mean, margin)
    return retrieve(fwd, bwd, retrieval, threshold)


def greedy_one_to_one(candidates: PairArrays, n_src: int, n_tgt: int) -> PairArrays:
    """LASER's ``max`` retrieval: take candidates by descending score (stable), each sentence at most once.

    ``n_src``, ``n_tgt`` bound the row numbers of the two sides. Loops over the sorted arrays, no objects.
    """
    order = np.argsort(-candidates.score, kind="stable")  # (p,)
    used_src, used_tgt = bytearray(n_src), bytearray(n_tgt)
    kept: list[int] = []
    for pos, s, t in zip(order.tolist(), candidates.src[order].tolist(), candidates.tgt[order].tolist(), strict=True):
        if not used_src[s] and not used_tgt[t]:
            used_src[s] = used_tgt[t] = 1
            kept.append(pos)
    return candidates.take(np.asarray(kept, dtype=np.intp))


def _found(pairs: PairArrays) -> PairArrays:
    # Rows whose query had no neighbour at all (approximate search only) have no candidate.
    found = (pairs.src >= 0) & (pairs.tgt >= 0)  # (p,)
    return pairs if bool(found.all()) else pairs.take(found)


def _concat(a: PairArrays, b: PairArrays) -> PairArrays:
    return PairArrays(
        np.concatenate([a.src, b.src]),
        np.concatenate([a.tgt, b.tgt]),
        np.concatenate([a.score, b.score]),
        np.concatenate([a.cosine, b.cosine]),
    )
