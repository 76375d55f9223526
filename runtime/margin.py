"""LASER margin-based bitext mining over L2-normalised embeddings (numpy + faiss, no torch).

Follows Artetxe & Schwenk (2019), "Margin-based Parallel Corpus Mining with Multilingual
Sentence Embeddings" (ACL), as implemented in LASER's ``source/mine_bitexts.py``:

* exact k-NN by cosine in both directions (faiss inner product); k is clipped to the size of the
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

This module is the small-input face of the streaming engine in ``runtime/mining/``: the k-NN runs over
chunks of both sides (``runtime/mining/neighbours.py``), the scoring and retrieval on arrays
(``runtime/mining/scoring.py``). :func:`mine` returns objects, :func:`mine_arrays` arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

import numpy as np
import numpy.typing as npt

from xalign.runtime.mining.neighbours import DEFAULT_CHUNK_ROWS, Neighbours, knn_chunked
from xalign.runtime.mining.scoring import (
    Candidates,
    FloatArray,
    IntArray,
    Margin,
    MinedPair,
    PairArrays,
    Retrieval,
    apply_margin,
    margin_scores,
    neighbourhood_means,
    score_neighbours,
)
from xalign.runtime.mining.scoring import best_candidates as _best_of_neighbours

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "NORM_TOLERANCE",
    "BestCandidates",
    "FloatArray",
    "IntArray",
    "Margin",
    "MinedPair",
    "MiningConfig",
    "PairArrays",
    "Retrieval",
    "apply_margin",
    "best_candidates",
    "check_normalized",
    "knn",
    "knn_means",
    "l2_normalize",
    "margin_scores",
    "mine",
    "mine_arrays",
    "select_best",
]

# The best candidate of every query row: index (n,), score (n,), cosine (n,) (the engine's Candidates).
BestCandidates = Candidates

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
    descending similarity (ties: lower id first), as LASER's ``knnCPU``. Either side empty gives (n, 0)
    arrays. Streams over chunks of both sides (``runtime/mining/neighbours.py``).
    """
    found = knn_chunked(x, y, k)
    return found.sims, found.ids


def knn_means(x: FloatArray, y: FloatArray, k: int = 4) -> tuple[FloatArray, FloatArray]:
    """LASER's neighbourhood means: (x→y (n,), y→x (m,)) mean cosine to the k nearest of the other side.

    k is clipped to the size of the side searched. Empty sides give empty arrays.
    """
    return neighbourhood_means(knn_chunked(x, y, k)), neighbourhood_means(knn_chunked(y, x, k))


def best_candidates(
    x: FloatArray, y: FloatArray, x_mean: FloatArray, y_mean: FloatArray, *, k: int, margin: Margin
) -> BestCandidates:
    """Score every row of x against its k nearest rows of y and keep the best (LASER ``score_candidates``).

    x (n, d), y (m, d) unit rows; x_mean (n,) is x→y and y_mean (m,) is y→x neighbourhood means.
    Requires m ≥ 1. Runs the k-NN search; use :func:`select_best` when it was already run.
    """
    if y.shape[0] == 0:
        raise ValueError("best_candidates needs at least one row in y")
    return _best_of_neighbours(knn_chunked(x, y, k), x_mean, y_mean, margin)


def select_best(
    sims: FloatArray, ids: IntArray, query_mean: FloatArray, other_mean: FloatArray, margin: Margin
) -> BestCandidates:
    """Best of each query's k-NN candidates by margin score.

    sims, ids (n, k') from :func:`knn` (k' ≥ 1); query_mean (n,) the queries' own neighbourhood means,
    other_mean (m,) those of the searched side. Ties keep the nearer neighbour (``argmax`` takes the first).
    """
    return _best_of_neighbours(Neighbours(sims, ids), query_mean, other_mean, margin)


def mine(x: npt.ArrayLike, y: npt.ArrayLike, config: MiningConfig | None = None) -> list[MinedPair]:
    """Mine parallel pairs between x (n, d) and y (m, d), both with L2-normalised rows.

    Returns pairs sorted by descending margin score (ties: lower src, then lower tgt first).
    An empty side gives ``[]``. Raises ``ValueError`` on unnormalised input or a dimension mismatch.
    """
    return mine_arrays(x, y, config).to_pairs()


def mine_arrays(
    x: npt.ArrayLike, y: npt.ArrayLike, config: MiningConfig | None = None, *, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> PairArrays:
    """:func:`mine` as arrays (src, tgt, score, cosine), in the same order, without one object per pair.

    Each k-NN search sees at most ``chunk_rows`` rows of either side at a time; the result does not depend
    on it. Both sides are validated in memory, so this suits inputs that fit; ``runtime/mining/`` streams.
    """
    config = config or MiningConfig()
    xs, ys = check_normalized(x, "x"), check_normalized(y, "y")
    if xs.shape[0] == 0 or ys.shape[0] == 0:
        return PairArrays.empty()
    if xs.shape[1] != ys.shape[1]:
        raise ValueError(f"x and y differ in dimension: {xs.shape[1]} vs {ys.shape[1]}")
    # One exact k-NN search per direction serves both the neighbourhood means and the candidates.
    x2y = knn_chunked(xs, ys, config.k, chunk_rows)  # (n, k'), k' = min(k, m)
    y2x = knn_chunked(ys, xs, config.k, chunk_rows)  # (m, k''), k'' = min(k, n)
    return score_neighbours(x2y, y2x, config.margin, config.retrieval, config.threshold)
