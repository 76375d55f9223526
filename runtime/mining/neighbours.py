"""Exact k-nearest-neighbour search by inner product, streamed over chunks of both sides (numpy + faiss).

On unit rows the inner product is the cosine, so this is the k-NN of LASER's margin mining
(``runtime/margin.py``). :func:`knn_block` searches one chunk of queries against one chunk of the
searched side; :func:`merge_neighbours` keeps the k best of two results for the same queries;
:func:`knn_chunked` combines them so that no more than a ``chunk_rows`` x ``chunk_rows`` block of
similarities is ever handed to faiss, whatever the sizes of the two sides. The two directions of
mining are two calls with the sides swapped.

Order within a row is canonical: descending similarity, ties broken by the lower id. Which of several
neighbours tied exactly at the k-th place faiss keeps within one block is faiss's choice; across blocks
the lower id wins. Such ties only arise between identical vectors of the searched side.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]

# Rows per chunk of either side: blocks of at most 8192 x 8192 similarities (faiss tiles them further).
DEFAULT_CHUNK_ROWS = 8192
# faiss's GPU brute-force search handles k up to 2048; larger k runs on the CPU.
GPU_MAX_K = 2048


@dataclass(frozen=True)
class Neighbours:
    """The k nearest rows of the searched side for each of n queries, best first.

    ``sims`` (n, k) float32 descending along each row; ``ids`` (n, k) int64 rows of the searched side.
    An id of -1 (similarity -inf) marks a neighbour an approximate search did not find
    (``runtime/mining/ann.py``); exact search never leaves one.
    """

    sims: FloatArray
    ids: IntArray

    def __post_init__(self) -> None:
        if self.sims.shape != self.ids.shape or self.sims.ndim != 2:
            raise ValueError(f"sims {self.sims.shape} and ids {self.ids.shape} must be the same (n, k) shape")

    @property
    def k(self) -> int:
        """Neighbours per query."""
        return int(self.sims.shape[1])

    def __len__(self) -> int:
        return int(self.sims.shape[0])


def empty_neighbours(n: int, k: int = 0) -> Neighbours:
    """n queries with k missing neighbours each: (n, k) sims -inf and ids -1 ((n, 0) for k = 0)."""
    return Neighbours(np.full((n, k), -np.inf, np.float32), np.full((n, k), -1, np.int64))


def concat_rows(parts: Sequence[Neighbours]) -> Neighbours:
    """Stack the results of consecutive query chunks (same k) into one, in order."""
    return Neighbours(np.concatenate([p.sims for p in parts]), np.concatenate([p.ids for p in parts]))


def canonical_order(sims: FloatArray, ids: IntArray, k: int) -> Neighbours:
    """The first k of each row of (n, c) candidates by descending similarity, ties by lower id."""
    # lexsort's last key is the primary one; negating float32 is exact, so ties stay ties.
    order = np.lexsort((ids, -sims), axis=1)[:, :k]  # (n, min(k, c))
    return Neighbours(
        np.ascontiguousarray(np.take_along_axis(sims, order, axis=1)),
        np.ascontiguousarray(np.take_along_axis(ids, order, axis=1)),
    )


def knn_block(queries: npt.ArrayLike, base: npt.ArrayLike, k: int, base_offset: int = 0) -> Neighbours:
    """Exact k nearest rows of ``base`` for every row of ``queries`` by inner product.

    queries (n, d), base (m, d) float32 (copied to C-contiguous float32 if they are not, e.g. a slice of
    a memory map) → Neighbours (n, min(k, m)), as LASER's ``knnCPU`` clips k to the side searched.
    ``base_offset`` is added to the ids, so a chunk starting at row r of a larger side passes r.
    Runs on faiss's GPU when one is visible, else on the CPU.
    """
    q = np.ascontiguousarray(queries, dtype=np.float32)  # (n, d)
    b = np.ascontiguousarray(base, dtype=np.float32)  # (m, d)
    k_eff = min(k, b.shape[0])
    if q.shape[0] == 0 or k_eff == 0:
        return _zeros(q.shape[0], k_eff)
    sims, ids = _search(q, b, k_eff)  # (n, k_eff) each
    return canonical_order(sims, ids + base_offset, k_eff)


def _zeros(n: int, k: int) -> Neighbours:
    # The result of an empty side: (n, k) with n = 0 or k = 0, as LASER's knn of an empty side.
    return Neighbours(np.zeros((n, k), np.float32), np.zeros((n, k), np.int64))


def _search(q: FloatArray, b: FloatArray, k: int) -> tuple[FloatArray, IntArray]:
    if k <= GPU_MAX_K and faiss.get_num_gpus() > 0:
        sims, ids = faiss.knn_gpu(_gpu_resources(), q, b, k, metric=faiss.METRIC_INNER_PRODUCT)
    else:
        sims, ids = faiss.knn(q, b, k, metric=faiss.METRIC_INNER_PRODUCT)
    return np.asarray(sims, np.float32), np.asarray(ids, np.int64)  # (n, k) each


@functools.cache
def _gpu_resources() -> Any:
    # One StandardGpuResources per process: creating it reserves GPU scratch memory.
    return faiss.StandardGpuResources()


def merge_neighbours(a: Neighbours, b: Neighbours, k: int) -> Neighbours:
    """The k best of two results for the same n queries (e.g. two chunks of the searched side).

    a (n, ka), b (n, kb) → (n, min(k, ka + kb)); descending similarity, ties broken by the lower id.
    """
    if len(a) != len(b):
        raise ValueError(f"cannot merge neighbours of {len(a)} and {len(b)} queries")
    sims = np.concatenate([a.sims, b.sims], axis=1)  # (n, ka + kb)
    ids = np.concatenate([a.ids, b.ids], axis=1)  # (n, ka + kb)
    return canonical_order(sims, ids, k)


def knn_chunked(
    queries: npt.ArrayLike, base: npt.ArrayLike, k: int, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> Neighbours:
    """Exact k-NN of every query row in ``base`` (inner product), streaming over chunks of both sides.

    queries (n, d), base (m, d) → Neighbours (n, min(k, m)) with ids into ``base``. Each search sees at most
    ``chunk_rows`` queries against ``chunk_rows`` base rows, so the extra memory is bounded by that block
    and the (chunk_rows, k) results, not by n x m. Either side may be a memory map: only a chunk at a time
    is read. The result equals one :func:`knn_block` over everything (same ids, same order).
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    q, b = _rows(queries), _rows(base)
    parts = [_knn_query_chunk(q[i : i + chunk_rows], b, k, chunk_rows) for i in range(0, q.shape[0], chunk_rows)]
    return concat_rows(parts) if parts else _zeros(0, min(k, b.shape[0]))


def _rows(x: npt.ArrayLike) -> Any:
    # Keeps a memory map or an array as it is (slices are read chunk by chunk); anything else becomes float32.
    arr = x if isinstance(x, np.ndarray) else np.asarray(x, dtype=np.float32)
    if arr.ndim != 2:
        raise ValueError(f"expected a 2-D (n, d) array, got shape {arr.shape}")
    return arr


def _knn_query_chunk(q: Any, b: Any, k: int, chunk_rows: int) -> Neighbours:
    """One chunk of queries (c, d) against every chunk of the base, merged as it goes → (c, min(k, m))."""
    q = np.ascontiguousarray(q, dtype=np.float32)  # read once, not once per base chunk
    best = knn_block(q, b[:chunk_rows], k, 0)
    for start in range(chunk_rows, b.shape[0], chunk_rows):
        best = merge_neighbours(best, knn_block(q, b[start : start + chunk_rows], k, start), k)
    return best
