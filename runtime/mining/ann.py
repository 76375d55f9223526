"""Approximate k-NN by inner product for sides too large for exact search (faiss IVF, IVF-PQ, HNSW).

:func:`build_index` indexes one side; :func:`knn_ann` searches it with chunks of the other side and
returns the same :class:`~xalign.runtime.mining.neighbours.Neighbours` as the exact search, so the margin
scoring of ``runtime/mining/scoring.py`` runs unchanged on it. Neighbours the search did not reach are
id -1 (similarity -inf); the scoring leaves them out.

IVF and IVF-PQ are trained on a sample of the indexed side drawn with a seeded generator, so the same
vectors and seed give the same index. HNSW needs no training; faiss inserts in parallel, so its graph
(not its recall) can differ between runs with several threads. IVF-PQ similarities are approximations
of the cosine: :func:`rescore` replaces them by exact ones when the vectors are at hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import faiss
import numpy as np
import numpy.typing as npt

from xalign.runtime.mining.neighbours import (
    DEFAULT_CHUNK_ROWS,
    Neighbours,
    canonical_order,
    concat_rows,
    empty_neighbours,
)

IndexKind = Literal["ivf", "ivfpq", "hnsw"]


@dataclass(frozen=True)
class AnnParams:
    """How to build an approximate index.

    ``nlist`` inverted lists (ivf, ivfpq); ``pq_m`` sub-quantizers of ``pq_bits`` bits each (ivfpq; the
    dimension must divide by ``pq_m``); ``hnsw_m`` links per node and ``ef_construction`` (hnsw);
    ``train_rows`` vectors sampled with ``seed`` to train the quantizers (faiss wants ~39 per list).
    """

    nlist: int = 1024
    pq_m: int = 16
    pq_bits: int = 8
    hnsw_m: int = 32
    ef_construction: int = 200
    train_rows: int = 100_000
    seed: int = 0


def build_index(vectors: npt.ArrayLike, kind: IndexKind, params: AnnParams | None = None) -> Any:
    """An approximate inner-product index of kind ``kind`` holding (m, d) ``vectors`` (ids 0..m-1).

    IVF kinds are trained first on ``min(train_rows, m)`` rows drawn with ``seed`` (sorted, so the sample
    is read in file order from a memory map); ``nlist`` is clipped to the training rows. Vectors are added
    in chunks of :data:`~xalign.runtime.mining.neighbours.DEFAULT_CHUNK_ROWS`.
    """
    params = params or AnnParams()
    data = vectors if isinstance(vectors, np.ndarray) else np.asarray(vectors, dtype=np.float32)  # (m, d)
    if data.ndim != 2 or data.shape[0] == 0:
        raise ValueError(f"build_index needs a non-empty (m, d) array, got shape {data.shape}")
    index = _empty_index(kind, int(data.shape[1]), params, min(params.train_rows, int(data.shape[0])))
    if not index.is_trained:
        index.train(training_sample(data, params.train_rows, params.seed))
    for start in range(0, data.shape[0], DEFAULT_CHUNK_ROWS):
        index.add(np.ascontiguousarray(data[start : start + DEFAULT_CHUNK_ROWS], dtype=np.float32))
    return index


def training_sample(vectors: Any, rows: int, seed: int) -> npt.NDArray[np.float32]:
    """``min(rows, m)`` distinct rows of (m, d) ``vectors`` drawn with ``seed``, in row order → (r, d) float32."""
    m = int(vectors.shape[0])
    if rows >= m:
        return np.ascontiguousarray(vectors, dtype=np.float32)
    picked = np.sort(np.random.default_rng(seed).choice(m, size=rows, replace=False))  # (rows,)
    return np.ascontiguousarray(vectors[picked], dtype=np.float32)


def _empty_index(kind: IndexKind, dim: int, params: AnnParams, train_rows: int) -> Any:
    ip = faiss.METRIC_INNER_PRODUCT
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, params.hnsw_m, ip)
        index.hnsw.efConstruction = params.ef_construction
        return index
    nlist = max(1, min(params.nlist, train_rows))
    # faiss's Python wrapper keeps the quantizer alive as long as the index that refers to it.
    quantizer = faiss.IndexFlatIP(dim)
    if kind == "ivf":
        return faiss.IndexIVFFlat(quantizer, dim, nlist, ip)
    if kind == "ivfpq":
        if dim % params.pq_m:
            raise ValueError(f"ivfpq needs the dimension ({dim}) to divide by pq_m ({params.pq_m})")
        return faiss.IndexIVFPQ(quantizer, dim, nlist, params.pq_m, params.pq_bits, ip)
    raise ValueError(f"index kind must be one of ivf, ivfpq, hnsw, got {kind!r}")


def knn_ann(
    index: Any,
    queries: npt.ArrayLike,
    k: int,
    *,
    nprobe: int | None = None,
    ef_search: int | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> Neighbours:
    """Approximate k nearest indexed rows for every query row, in chunks of ``chunk_rows`` queries.

    queries (n, d) → Neighbours (n, min(k, ntotal)), best first, ties by lower id, -1 where nothing was
    found. ``nprobe`` (lists visited, IVF kinds) and ``ef_search`` (HNSW) trade speed for recall; None
    keeps the index's own setting. The index itself is not changed.
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    q = queries if isinstance(queries, np.ndarray) else np.asarray(queries, dtype=np.float32)  # (n, d)
    k_eff = min(k, int(index.ntotal))
    if q.shape[0] == 0 or k_eff == 0:
        return empty_neighbours(int(q.shape[0]), k_eff)
    search = _search_params(index, nprobe, ef_search)
    parts = [_search_chunk(index, q[i : i + chunk_rows], k_eff, search) for i in range(0, q.shape[0], chunk_rows)]
    return concat_rows(parts)


def _search_params(index: Any, nprobe: int | None, ef_search: int | None) -> Any:
    # Each kind reads only its own knob: nprobe for the IVF kinds, efSearch for HNSW.
    if nprobe is not None and hasattr(index, "nprobe"):
        return faiss.SearchParametersIVF(nprobe=nprobe)
    if ef_search is not None and hasattr(index, "hnsw"):
        return faiss.SearchParametersHNSW(efSearch=ef_search)
    return None


def _search_chunk(index: Any, q: Any, k: int, params: Any) -> Neighbours:
    sims, ids = index.search(np.ascontiguousarray(q, dtype=np.float32), k, params=params)  # (c, k) each
    ids = ids.astype(np.int64, copy=False)
    # faiss pads misses with id -1 and the lowest float; -inf keeps them last and out of any mean.
    sims = np.where(ids >= 0, sims, -np.inf).astype(np.float32)
    return canonical_order(sims, ids, k)


def rescore(neigh: Neighbours, queries: npt.ArrayLike, base: npt.ArrayLike) -> Neighbours:
    """Exact inner products for the neighbours found (e.g. by IVF-PQ), re-sorted; misses stay -1.

    neigh (n, k) of queries (n, d) in base (m, d) → Neighbours (n, k) with ``sims[i, j] = q_i · base[ids[i, j]]``.
    """
    q = np.asarray(queries, dtype=np.float32)  # (n, d)
    found = neigh.ids >= 0  # (n, k)
    # Misses gather row 0 and are masked afterwards; np.unique keeps the read of a memory map in row order.
    rows, inverse = np.unique(np.where(found, neigh.ids, 0), return_inverse=True)
    vectors = np.asarray(np.asarray(base)[rows], dtype=np.float32)[inverse.reshape(neigh.ids.shape)]  # (n, k, d)
    sims = np.einsum("nd,nkd->nk", q, vectors).astype(np.float32)  # (n, k)
    return canonical_order(np.where(found, sims, np.float32(-np.inf)), neigh.ids, neigh.k)
