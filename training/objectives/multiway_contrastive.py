"""Multi-way parallel contrastive alignment: translation ranking over every language pair of N-way tuples.

What it is: the all-pairs generalisation of in-batch translation ranking (``translation_ranking``; LaBSE,
Feng et al. 2022; DAP, Li et al. 2023) to N-way parallel tuples, so that every language is pulled towards every
other one instead of only towards English (the English-centric En-X baseline). No single paper's recipe is
followed: the closest published form is the "full graph" objective of Contrastive Multiview Coding (Tian,
Krishnan, Isola 2020, ECCV), which sums a two-view contrastive loss over all pairs of views; here the views are
the languages of a multi-way parallel corpus such as Multi30k (en/de/fr/cs) or NTREX-128.

Inputs: ``emb`` (B, L, D), slot l of row b the embedding of tuple b in language l; ``present`` (B, L) bool,
False where a tuple lacks that language (None: all present). For each pair of slots a < b the rows where both
are present form a batch of ``n_ab`` translation pairs and give a symmetric InfoNCE loss ``loss_ab`` (other
rows of the same pair are the negatives). The result is the scalar

    sum_{a<b} n_ab * loss_ab / sum_{a<b} n_ab

over the pairs with at least two valid rows (a single row has no negative, so its loss is identically 0 and
carries no signal). With L = 2 and everything present this equals ``translation_ranking_loss``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from xalign.training.objectives.translation_ranking import DEFAULT_TEMPERATURE, translation_ranking_loss

MIN_ROWS: int = 2  # a pair needs one negative to say anything


def multiway_contrastive_loss(
    emb: Tensor,
    present: Tensor | None = None,
    temperature: float = DEFAULT_TEMPERATURE,
    margin: float = 0.0,
) -> Tensor:
    """Symmetric InfoNCE over every language pair of ``emb`` (B, L, D), weighted by valid rows; a scalar.

    ``present`` (B, L) bool masks missing translations. Returns 0 (still differentiable) when no pair has
    two rows with both languages present. ``margin`` is passed to ``translation_ranking_loss``.
    """
    if emb.ndim != 3:
        raise ValueError(f"emb must be (batch, languages, dim), got {tuple(emb.shape)}")
    batch, languages, _ = emb.shape
    if present is None:
        present = torch.ones(batch, languages, dtype=torch.bool, device=emb.device)
    if present.shape != (batch, languages):
        raise ValueError(f"present must be {(batch, languages)}, got {tuple(present.shape)}")
    present = present.bool()
    # (L, L) rows with both languages, fetched to the host once rather than once per pair.
    counts: list[list[int]] = (present.unsqueeze(2) & present.unsqueeze(1)).sum(dim=0).tolist()
    total = emb[..., :0].sum().float()  # a zero in the graph (and never NaN from unused slots) if no pair counts
    weight = 0
    for a in range(languages):
        for b in range(a + 1, languages):
            count = counts[a][b]
            if count < MIN_ROWS:
                continue
            rows = present[:, a] & present[:, b]  # (B,)
            src, tgt = (emb[:, a], emb[:, b]) if count == batch else (emb[rows, a], emb[rows, b])  # (n_ab, D)
            pair_loss = translation_ranking_loss(src, tgt, temperature, True, margin)
            total = total + count * pair_loss
            weight += count
    return total / max(weight, 1)
