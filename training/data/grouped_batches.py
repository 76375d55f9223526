"""Batches of near neighbours: a data order whose micro-batches each hold sentences similar to one another.

Random batches of a multilingual corpus are easy: their sentences differ in topic (and, for a multi-way corpus,
often in language), so the in-batch negatives are told apart by surface cues and the ranking loss soon falls
to ~0. Grouping similar sentences into one batch makes every negative a near miss.

``split_tree`` cuts the examples' embeddings (N, D) in two along their principal direction, again and again,
until every group holds at most ``leaf`` examples; cuts fall at multiples of ``leaf``, so all groups but one
are full. ``grouped_permutation`` turns groups of ``batch_size`` into a permutation for ``DataOrder``
(``training/trainer/order.py``): groups in a seeded random order, laid out so that each micro-batch slot of a
step window (positions ``slot::slots``) is one group. Cost: O(N * D * log(N / leaf)).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]
_POWER_STEPS = 8  # power-iteration steps for a principal direction: enough to separate groups, cheap


def principal_direction(vectors: FloatArray, rng: np.random.Generator) -> FloatArray:
    """An approximate first principal direction (D,) of ``vectors`` (n, D), by power iteration."""
    centred: FloatArray = vectors - vectors.mean(axis=0, keepdims=True)
    direction: FloatArray = rng.standard_normal((vectors.shape[1],), dtype=np.float32)
    for _ in range(_POWER_STEPS):
        direction = centred.T @ (centred @ direction)
        direction /= max(float(np.linalg.norm(direction)), 1e-12)
    return direction


def split_tree(vectors: FloatArray, leaf: int, rng: np.random.Generator) -> list[IntArray]:
    """Row indices of ``vectors`` (N, D) in groups of at most ``leaf`` near neighbours (see the module doc)."""
    pending, leaves = [np.arange(len(vectors), dtype=np.int64)], []
    while pending:
        members = pending.pop()
        if len(members) <= leaf:
            leaves.append(members)
            continue
        order = members[np.argsort(vectors[members] @ principal_direction(vectors[members], rng), kind="stable")]
        cut = max(leaf, (len(members) // 2) // leaf * leaf)  # a multiple of leaf near the middle
        pending += [order[cut:], order[:cut]]
    return leaves


def grouped_permutation(vectors: FloatArray, batch_size: int, slots: int, rng: np.random.Generator) -> IntArray:
    """A permutation of the N rows of ``vectors`` in which every micro-batch of a step is one group."""
    groups = split_tree(vectors, batch_size, rng)
    full = [groups[i] for i in rng.permutation(len(groups)) if len(groups[i]) == batch_size]
    rest = np.concatenate([group for group in groups if len(group) < batch_size] or [np.empty(0, np.int64)])
    windows = [
        np.stack(full[start : start + slots], axis=1).reshape(-1)  # position m * slots + s = group s, row m
        for start in range(0, len(full) - slots + 1, slots)
    ]
    return np.concatenate([*windows, *full[len(windows) * slots :], rest]).astype(np.int64)
