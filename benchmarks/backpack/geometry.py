"""Sense geometry: how the sense vectors of dictionary word pairs are arranged, compared across two spaces.

A word is represented by its k sense vectors C(w) (non-contextual, so a word has one representation): each
sense vector L2-normalised, the k concatenated and scaled by 1/sqrt(k) into a (k*d) unit vector, whose
cosine with another word's is the mean over senses of the per-sense cosines (the same comparison as
SENSIA's sense-mixture alignment). Only dictionary words that are a single token are used (``<s>`` + one id),
one translation per English word and one English word per translation (first MUSE entry wins), and pairs
whose two words are the same token are dropped (a shared token would match itself trivially).

Two spaces ``x`` (n, D) and ``y`` (n, D), row i of both the same word pair, are compared by

- ``knn_overlap``: mean over i of |N_x(i) & N_y(i)| / k, N the k nearest other rows by cosine (1 = same
  local topology; chance is about k / (n - 1));
- ``distance_correlation``: Pearson correlation of the upper triangles of the two cosine-distance matrices
  (1 = same global structure up to an affine map of distances);
- ``procrustes_residual``: both spaces centred and scaled to unit Frobenius norm, then
  min over orthogonal W of ||x W - y||_F, computed in closed form as sqrt(2 - 2 * nuclear_norm(x^T y))
  (0 = one space is a rotation / reflection of the other; at most 2, and about sqrt(2) for unrelated spaces).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tokenizers import Tokenizer

from xalign.training.data.records import WordPair
from xalign.training.models.backpack import Backpack


@dataclass(frozen=True)
class TokenPair:
    """A dictionary pair whose words are single tokens: the words and their token ids."""

    src: str
    tgt: str
    src_id: int
    tgt_id: int


@dataclass(frozen=True)
class GeometryScores:
    """The three comparisons of two spaces over ``pairs`` rows (see the module docstring)."""

    pairs: int
    k: int
    knn_overlap: float
    distance_correlation: float
    procrustes_residual: float


def single_token_id(tokenizer: Tokenizer, word: str) -> int | None:
    """The id of ``word`` when it encodes as ``<s>`` + one token, else None."""
    ids = tokenizer.encode(word).ids
    return ids[1] if len(ids) == 2 else None


def single_token_pairs(tokenizer: Tokenizer, pairs: Sequence[WordPair]) -> list[TokenPair]:
    """One-to-one dictionary pairs whose two words are different single tokens, in dictionary order."""
    kept: list[TokenPair] = []
    seen_src: set[int] = set()
    seen_tgt: set[int] = set()
    for pair in pairs:
        src_id, tgt_id = single_token_id(tokenizer, pair.src), single_token_id(tokenizer, pair.tgt)
        if src_id is None or tgt_id is None or src_id == tgt_id or src_id in seen_src or tgt_id in seen_tgt:
            continue
        seen_src.add(src_id)
        seen_tgt.add(tgt_id)
        kept.append(TokenPair(pair.src, pair.tgt, src_id, tgt_id))
    return kept


@torch.no_grad()
def sense_space(model: Backpack, ids: Sequence[int]) -> np.ndarray:
    """Per-sense unit vectors of each token, concatenated / sqrt(k): (len(ids), k*d) float64."""
    model.eval()
    senses = model.senses(torch.tensor(list(ids), dtype=torch.long))  # (n, k, d)
    unit = torch.nn.functional.normalize(senses, dim=-1).flatten(1) / senses.shape[1] ** 0.5
    return np.asarray(unit.double().numpy(), dtype=np.float64)


def _unit_rows(x: np.ndarray) -> np.ndarray:
    return np.asarray(x / np.linalg.norm(x, axis=1, keepdims=True).clip(min=1e-12), dtype=np.float64)


def cosine_distances(x: np.ndarray) -> np.ndarray:
    """1 - cosine similarity of every pair of rows: (n, D) -> (n, n)."""
    unit = _unit_rows(x)
    return np.asarray(1.0 - unit @ unit.T, dtype=np.float64)


def nearest_neighbours(x: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k most cosine-similar other rows of each row, (n, k)."""
    sims = _unit_rows(x) @ _unit_rows(x).T
    np.fill_diagonal(sims, -np.inf)
    return np.asarray(np.argsort(-sims, axis=1, kind="stable")[:, :k])


def knn_overlap(x: np.ndarray, y: np.ndarray, k: int = 10) -> float:
    """Mean share of common members in each row's k nearest neighbours in ``x`` and in ``y``."""
    _check_spaces(x, y, minimum=k + 1)
    near_x, near_y = nearest_neighbours(x, k), nearest_neighbours(y, k)
    shared = [len(set(a.tolist()) & set(b.tolist())) for a, b in zip(near_x, near_y, strict=True)]
    return float(np.mean(shared)) / k


def distance_correlation(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of the upper-triangular cosine distances of ``x`` and of ``y``."""
    _check_spaces(x, y, minimum=3)
    upper = np.triu_indices(len(x), k=1)
    return float(np.corrcoef(cosine_distances(x)[upper], cosine_distances(y)[upper])[0, 1])


def _normalised(x: np.ndarray) -> np.ndarray:
    centred = x - x.mean(axis=0, keepdims=True)
    return np.asarray(centred / max(float(np.linalg.norm(centred)), 1e-12), dtype=np.float64)


def procrustes_residual(x: np.ndarray, y: np.ndarray) -> float:
    """Residual of the best orthogonal map from centred, unit-Frobenius ``x`` onto ``y`` (0 = exact)."""
    _check_spaces(x, y, minimum=2)
    a, b = _normalised(x), _normalised(y)
    # nuclear_norm(a^T b) without the (D, D) product: a^T = Q R (Q orthonormal columns), so it equals that of R b.
    _, r = np.linalg.qr(a.T)  # r (n, n)
    nuclear = float(np.linalg.svd(r @ b, compute_uv=False).sum())
    return float(np.sqrt(max(0.0, 2.0 - 2.0 * nuclear)))


def compare_spaces(x: np.ndarray, y: np.ndarray, k: int = 10) -> GeometryScores:
    """All three comparisons of ``x`` and ``y`` (row i of both the same word pair)."""
    return GeometryScores(
        pairs=len(x),
        k=k,
        knn_overlap=knn_overlap(x, y, k),
        distance_correlation=distance_correlation(x, y),
        procrustes_residual=procrustes_residual(x, y),
    )


def _check_spaces(x: np.ndarray, y: np.ndarray, minimum: int) -> None:
    if x.ndim != 2 or y.ndim != 2 or len(x) != len(y):
        raise ValueError(f"two (n, D) spaces with the same rows are needed, got {x.shape} and {y.shape}")
    if len(x) < minimum:
        raise ValueError(f"at least {minimum} rows are needed, got {len(x)}")
