"""LASER margin-based bitext mining over L2-normalised embeddings (numpy + faiss, no torch).

Follows Artetxe & Schwenk (2019), "Margin-based Parallel Corpus Mining with Multilingual
Sentence Embeddings" (ACL), as implemented in LASER's ``source/mine_bitexts.py``:

* k-NN by cosine in both directions (``faiss.IndexFlatIP``); k is clipped to the size of the
  side searched, as LASER does (``min(y.shape[0], k)``).
* For a pair (x_i, y_j) with cosine ``a`` the neighbourhood term is
  ``b = (mean_k cos(x_i, NN_k(x_i)) + mean_k cos(y_j, NN_k(y_j))) / 2`` and the score is
  ``a / b`` (ratio), ``a - b`` (distance) or ``a`` (absolute).
* Candidates: each x is scored against its k nearest y only and the best is kept (forward);
  likewise each y against its k nearest x (backward). ``intersect`` keeps forward pairs that are
  also the backward best; ``max`` takes the union of both directions and keeps pairs greedily by
  descending score so that every sentence is used at most once.

Input vectors must already be L2-normalised (as every encoder here returns them); anything else
is refused with ``ValueError`` rather than normalised silently, because an unnormalised input
usually means the wrong model output was passed. Call :func:`l2_normalize` first to opt in.

Differences from LASER, all deliberate: the threshold applies in every retrieval mode (LASER
applies it in ``max`` only) and keeps scores ``>= threshold`` (LASER's miner keeps ``>``; its
``bucc.py`` extraction keeps ``>=``); ties are broken deterministically (stable sorts, lowest
index first); results are sorted by descending score.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import faiss
import numpy as np
import numpy.typing as npt

Margin = Literal["ratio", "distance", "absolute"]
Retrieval = Literal["forward", "backward", "intersect", "max"]

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]

# Embeddings from fp32/int8 ONNX graphs are normalised in float32; 1e-3 on the norm accepts
# those and still catches a raw (unnormalised) model output.
NORM_TOLERANCE = 1e-3


@dataclass(frozen=True)
class MiningConfig:
    """How to mine: margin function, neighbourhood size k, retrieval mode and optional threshold."""

    margin: Margin = "ratio"
    k: int = 4
    retrieval: Retrieval = "max"
    threshold: float | None = None

    def __post_init__(self) -> None:
        if self.margin not in get_args(Margin):
            raise ValueError(f"margin must be one of {get_args(Margin)}, got {self.margin!r}")
        if self.retrieval not in get_args(Retrieval):
            raise ValueError(f"retrieval must be one of {get_args(Retrieval)}, got {self.retrieval!r}")
        if self.k < 1:
            raise ValueError(f"k must be at least 1, got {self.k}")


@dataclass(frozen=True)
class MinedPair:
    """One mined pair: row ``src`` of x, row ``tgt`` of y, its margin score and its plain cosine."""

    src: int
    tgt: int
    score: float
    cosine: float


@dataclass(frozen=True)
class BestCandidates:
    """For every query row, its best candidate among its k nearest neighbours.

    ``index`` (n,) int64 row of the other side, ``score`` (n,) margin score, ``cosine`` (n,).
    """

    index: IntArray
    score: FloatArray
    cosine: FloatArray


def l2_normalize(x: npt.ArrayLike) -> FloatArray:
    """Return a float32 copy of ``x`` (n, d) with unit rows; zero rows stay zero."""
    arr = np.array(x, dtype=np.float32, copy=True, ndmin=2)
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    np.divide(arr, norms, out=arr, where=norms > 0)
    return arr


def check_normalized(x: npt.ArrayLike, name: str = "x") -> FloatArray:
    """Validate a (n, d) matrix of unit rows and return it as C-contiguous float32.

    Raises ``ValueError`` naming ``name`` when it is not 2-D, not finite, or a row's L2 norm
    differs from 1 by more than ``NORM_TOLERANCE``. An empty (0, d) matrix is valid, and an
    empty list becomes a (0, 0) matrix.
    """
    arr = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    if arr.size == 0 and arr.ndim == 1:
        # An empty list of vectors: its dimension is unknown, and it mines nothing.
        return arr.reshape(0, 0)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (n, dim) array, got shape {arr.shape}")
    if arr.shape[0] == 0:
        return arr
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    deviation = float(np.abs(np.linalg.norm(arr, axis=1) - 1.0).max())
    if deviation > NORM_TOLERANCE:
        raise ValueError(
            f"{name} rows must be L2-normalised (largest |norm - 1| is {deviation:.4g}); "
            "normalise them first, e.g. with l2_normalize()"
        )
    return arr


def knn(x: FloatArray, y: FloatArray, k: int) -> tuple[FloatArray, IntArray]:
    """Exact k nearest rows of ``y`` for every row of ``x`` by inner product (cosine on unit rows).

    x (n, d), y (m, d) float32 → (sims (n, k'), ids (n, k')) with k' = min(k, m), sorted by
    descending similarity, as LASER's ``knnCPU``. Either side empty gives (n, 0) arrays.
    """
    k_eff = min(k, y.shape[0])
    if x.shape[0] == 0 or k_eff == 0:
        return np.zeros((x.shape[0], k_eff), np.float32), np.zeros((x.shape[0], k_eff), np.int64)
    index = faiss.IndexFlatIP(x.shape[1])
    # faiss wants C-contiguous float32; a no-op for arrays from check_normalized().
    index.add(np.ascontiguousarray(y, dtype=np.float32))
    sims, ids = index.search(np.ascontiguousarray(x, dtype=np.float32), k_eff)
    return sims.astype(np.float32, copy=False), ids.astype(np.int64, copy=False)


def knn_means(x: FloatArray, y: FloatArray, k: int = 4) -> tuple[FloatArray, FloatArray]:
    """LASER's neighbourhood means: (x→y (n,), y→x (m,)) mean cosine to the k nearest of the other side.

    k is clipped to the size of the side searched. Empty sides give empty arrays.
    """
    x2y, _ = knn(x, y, k)
    y2x, _ = knn(y, x, k)
    return _row_mean(x2y), _row_mean(y2x)


def _row_mean(sims: FloatArray) -> FloatArray:
    if sims.shape[1] == 0:
        return np.zeros(sims.shape[0], np.float32)
    return np.asarray(sims.mean(axis=1), dtype=np.float32)


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


def best_candidates(
    x: FloatArray, y: FloatArray, x_mean: FloatArray, y_mean: FloatArray, *, k: int, margin: Margin
) -> BestCandidates:
    """Score every row of x against its k nearest rows of y and keep the best (LASER ``score_candidates``).

    x (n, d), y (m, d) unit rows; x_mean (n,) is x→y and y_mean (m,) is y→x neighbourhood means.
    Requires m ≥ 1. Runs the k-NN search; use :func:`select_best` when it was already run.
    """
    if y.shape[0] == 0:
        raise ValueError("best_candidates needs at least one row in y")
    sims, ids = knn(x, y, k)
    return select_best(sims, ids, x_mean, y_mean, margin)


def select_best(
    sims: FloatArray, ids: IntArray, query_mean: FloatArray, other_mean: FloatArray, margin: Margin
) -> BestCandidates:
    """Best of each query's k-NN candidates by margin score.

    sims, ids (n, k') from :func:`knn` (k' ≥ 1); query_mean (n,) the queries' own neighbourhood means,
    other_mean (m,) those of the searched side. Ties keep the nearer neighbour (``argmax`` takes the first).
    """
    scores = margin_scores(sims, query_mean[:, None], other_mean[ids], margin)  # (n, k')
    best = scores.argmax(axis=1)  # (n,)
    rows = np.arange(sims.shape[0])
    return BestCandidates(index=ids[rows, best], score=scores[rows, best], cosine=sims[rows, best])


def mine(x: npt.ArrayLike, y: npt.ArrayLike, config: MiningConfig | None = None) -> list[MinedPair]:
    """Mine parallel pairs between x (n, d) and y (m, d), both with L2-normalised rows.

    Returns pairs sorted by descending margin score (ties: lower src, then lower tgt first).
    An empty side gives ``[]``. Raises ``ValueError`` on unnormalised input or a dimension mismatch.
    """
    config = config or MiningConfig()
    xs, ys = check_normalized(x, "x"), check_normalized(y, "y")
    if xs.shape[0] == 0 or ys.shape[0] == 0:
        return []
    if xs.shape[1] != ys.shape[1]:
        raise ValueError(f"x and y differ in dimension: {xs.shape[1]} vs {ys.shape[1]}")
    # One exact k-NN search per direction serves both the neighbourhood means and the candidates.
    x2y_sims, x2y_ids = knn(xs, ys, config.k)  # (n, k'), k' = min(k, m)
    y2x_sims, y2x_ids = knn(ys, xs, config.k)  # (m, k''), k'' = min(k, n)
    x_mean, y_mean = _row_mean(x2y_sims), _row_mean(y2x_sims)
    fwd = select_best(x2y_sims, x2y_ids, x_mean, y_mean, config.margin)
    bwd = select_best(y2x_sims, y2x_ids, y_mean, x_mean, config.margin)
    pairs = _retrieve(fwd, bwd, config.retrieval)
    if config.threshold is not None:
        threshold = config.threshold
        pairs = [p for p in pairs if p.score >= threshold]
    return sorted(pairs, key=lambda p: (-p.score, p.src, p.tgt))


def _retrieve(fwd: BestCandidates, bwd: BestCandidates, retrieval: Retrieval) -> list[MinedPair]:
    # fwd is indexed by x row, bwd by y row; a pair's score is the same from both sides because
    # the neighbourhood term is symmetric in x and y.
    forward = _pairs(np.arange(len(fwd.index)), fwd.index, fwd)
    backward = _pairs(bwd.index, np.arange(len(bwd.index)), bwd)
    if retrieval == "forward":
        return forward
    if retrieval == "backward":
        return backward
    if retrieval == "intersect":
        return [p for p in forward if int(bwd.index[p.tgt]) == p.src]
    return _greedy_one_to_one(forward + backward)


def _pairs(src: IntArray, tgt: IntArray, best: BestCandidates) -> list[MinedPair]:
    return [
        MinedPair(src=int(s), tgt=int(t), score=float(sc), cosine=float(c))
        for s, t, sc, c in zip(src, tgt, best.score, best.cosine, strict=True)
    ]


def _greedy_one_to_one(candidates: list[MinedPair]) -> list[MinedPair]:
    """LASER's ``max`` retrieval: take candidates by descending score, each sentence at most once."""
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
