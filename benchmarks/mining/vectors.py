"""Search benchmarks of ``runtime/mining/``: exact k-NN against the CPU's matmul rate, and IVF build/search/recall.

Each function returns a JSON-ready dict with its figures, the 1-minute load average before and after and the
process's peak RSS so far (``ru_maxrss``); ``benchmarks/mining/__main__.py`` runs one per process, so the peak
RSS is that run's own.
"""

from __future__ import annotations

import math
import os
import resource
import time
from typing import Any

import numpy as np
import numpy.typing as npt

from xalign.runtime.mining.ann import AnnParams, build_index, knn_ann
from xalign.runtime.mining.neighbours import knn_chunked

DIM = 384
K = 4
FloatArray = npt.NDArray[np.float32]


def unit_vectors(n: int, seed: int, dim: int = DIM) -> FloatArray:
    """(n, dim) float32 rows uniform on the unit sphere, from ``seed`` (generated in 100k-row pieces)."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), np.float32)
    for start in range(0, n, 100_000):
        block = rng.standard_normal((min(100_000, n - start), dim), dtype=np.float32)
        out[start : start + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def clustered_vectors(n: int, seed: int, centres: FloatArray, spread: float = 1.5) -> FloatArray:
    """(n, dim) unit rows around random ``centres`` (c, dim): centre + ``spread`` x a unit-norm Gaussian, normalised.

    Sentence embeddings cluster by topic; uniform vectors have no structure for IVF to use (see
    benchmarks/README.md), so the IVF run draws both sides from this mixture.
    """
    rng = np.random.default_rng(seed)
    out = unit_vectors(n, seed + 1, centres.shape[1])
    for start in range(0, n, 100_000):
        stop = min(start + 100_000, n)
        picked = centres[rng.integers(0, len(centres), stop - start)]  # (b, dim)
        block = picked + spread * out[start:stop]
        out[start:stop] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def matmul_gflops(side: int = 4096, repeats: int = 10) -> float:
    """This CPU's float32 matmul rate now: (side x 384) @ (384 x side), one warm-up then ``repeats`` timed."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((side, DIM), dtype=np.float32)
    b = rng.standard_normal((DIM, side), dtype=np.float32)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * side * side * DIM * repeats / (time.perf_counter() - start) / 1e9


def exact_run(n: int, chunk_rows: int, seed: int = 0) -> dict[str, Any]:
    """Exact k-NN of n x n seeded unit vectors, both directions with ``knn_chunked``, against the matmul limit."""
    before = os.getloadavg()[0]
    src, tgt = unit_vectors(n, seed), unit_vectors(n, seed + 1)
    rate_before = matmul_gflops()
    start = time.perf_counter()
    knn_chunked(src, tgt, K, chunk_rows)
    knn_chunked(tgt, src, K, chunk_rows)
    seconds = time.perf_counter() - start
    rate_after = matmul_gflops()
    rate = (rate_before + rate_after) / 2
    limit = 2 * n * n * DIM * 2 / (rate * 1e9)
    return {
        "n": n, "dim": DIM, "k": K, "chunk_rows": chunk_rows, "seconds": seconds,
        "matmul_gflops_before": rate_before, "matmul_gflops_after": rate_after,
        "limit_seconds": limit, "ratio_to_limit": seconds / limit,
        "achieved_gflops": 2 * n * n * DIM * 2 / seconds / 1e9,
        **_footprint(before),
    }  # fmt: skip


def ivf_run(n: int, nprobe: int, recall_queries: int, spread: float = 1.5, seed: int = 0) -> dict[str, Any]:
    """IVF (nlist ~ 4 sqrt(n)) of n clustered vectors: build, search of n queries, recall@1 on a sample vs exact."""
    before = os.getloadavg()[0]
    centres = unit_vectors(max(1, n // 100), seed + 7)
    base, queries = clustered_vectors(n, seed, centres, spread), clustered_vectors(n, seed + 2, centres, spread)
    nlist = 4 * round(math.sqrt(n))
    params = AnnParams(nlist=nlist, train_rows=min(n, 40 * nlist), seed=seed)
    start = time.perf_counter()
    index = build_index(base, "ivf", params)
    build_s = time.perf_counter() - start
    start = time.perf_counter()
    found = knn_ann(index, queries, K, nprobe=nprobe)
    search_s = time.perf_counter() - start
    sample = np.sort(np.random.default_rng(seed + 3).choice(n, size=min(recall_queries, n), replace=False))
    start = time.perf_counter()
    truth = knn_chunked(queries[sample], base, 1)
    exact_s = time.perf_counter() - start
    recall = float(np.mean(found.ids[sample, 0] == truth.ids[:, 0]))
    return {
        "n": n, "dim": DIM, "k": K, "spread": spread, "nlist": nlist, "nprobe": nprobe, "train_rows": params.train_rows,
        "build_seconds": build_s, "search_seconds": search_s, "queries_per_s": n / search_s,
        "recall_at_1": recall, "recall_queries": len(sample), "exact_sample_seconds": exact_s,
        **_footprint(before),
    }  # fmt: skip


def _footprint(load_before: float) -> dict[str, float]:
    # ru_maxrss is in KiB on Linux.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    return {"peak_rss_gib": peak, "load_1min_before": load_before, "load_1min_after": os.getloadavg()[0]}
