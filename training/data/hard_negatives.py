"""Hard negatives mined from the training corpus itself: for each pair, the nearest targets that are not its
translation.

Inputs: ``src`` and ``tgt`` (N, D), row i the embeddings of pair i's source and target. For source i every
other target j is a candidate, ranked by cosine similarity ``s_ij``. Two kinds are skipped:

* likely paraphrases of the true translation: ``s_ij >= s_ii - margin`` (a candidate nearly as close as the
  translation itself is more likely a second correct answer than a negative, and would teach the model to push
  a paraphrase away);
* exact duplicates of the translation: ``duplicates[j] == duplicates[i]`` (the same target text; i itself).

The ``count`` best remaining candidates are pair i's hard negatives (-1 where fewer remain). ``pools`` bounds
the search (each pair searched only among the pairs of its pool; None: all pairs), as O(N^2 D) over a whole
corpus is too slow on a CPU.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]
_ROWS_PER_CHUNK = 512  # source rows scored at once: bounds the (chunk, pool) similarity matrix


def normalised(vectors: FloatArray) -> FloatArray:
    """Rows scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    scaled: FloatArray = (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
    return scaled


def mine_in_pool(src: FloatArray, tgt: FloatArray, duplicates: IntArray, count: int, margin: float) -> IntArray:
    """Hard negatives (n, count) of the n pairs of one pool, as row indices into the pool (-1: none)."""
    found = np.full((len(src), count), -1, dtype=np.int64)
    for start in range(0, len(src), _ROWS_PER_CHUNK):
        rows = np.arange(start, min(start + _ROWS_PER_CHUNK, len(src)))
        sims = src[rows] @ tgt.T  # (chunk, n)
        positive = sims[np.arange(len(rows)), rows][:, None]  # (chunk, 1) the true translation
        blocked = (sims >= positive - margin) | (duplicates[None, :] == duplicates[rows][:, None])
        sims = np.where(blocked, -np.inf, sims)
        best = np.argsort(-sims, axis=1, kind="stable")[:, :count]  # (chunk, count)
        valid = np.isfinite(np.take_along_axis(sims, best, axis=1))
        found[rows, : best.shape[1]] = np.where(valid, best, -1)
    return found


def mine_hard_negatives(
    src: FloatArray,
    tgt: FloatArray,
    duplicates: IntArray,
    *,
    count: int,
    margin: float,
    pools: Sequence[IntArray] | None = None,
) -> IntArray:
    """Hard negatives (N, count) of every pair, as pair indices (-1: none); see the module docstring."""
    src, tgt = normalised(src), normalised(tgt)
    found = np.full((len(src), count), -1, dtype=np.int64)
    for pool in pools if pools is not None else [np.arange(len(src), dtype=np.int64)]:
        local = mine_in_pool(src[pool], tgt[pool], duplicates[pool], count, margin)
        found[pool] = np.where(local >= 0, pool[np.maximum(local, 0)], -1)
    return found
