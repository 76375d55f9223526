"""In-batch translation ranking (InfoNCE over parallel sentence embeddings).

The sentence-level objective of DAP (Li et al. 2023, "Dual-Alignment Pre-training for Cross-lingual Sentence
Embedding", ACL) and of the En-X dual-encoder baseline (LaBSE: Feng et al. 2022, "Language-agnostic BERT
Sentence Embedding", ACL; the additive margin softmax of Yang et al. 2019, "Improving Multilingual Sentence
Embedding using Bi-directional Dual Encoder with Additive Margin Softmax", IJCAI).

Inputs: ``src`` and ``tgt`` of shape (B, D), row i of ``tgt`` the translation of row i of ``src`` (pooled
sentence embeddings, normalised or not: they are L2-normalised here). Every other row of the batch is a
negative. With cosine similarities ``s_ij`` and temperature ``tau``::

    loss_src->tgt = -1/B * sum_i log( exp((s_ii - m) / tau) / (exp((s_ii - m) / tau) + sum_{j != i} exp(s_ij / tau)) )

and tgt->src is the same over the transposed similarity matrix (LaBSE's bidirectional loss). ``symmetric``
averages the two directions; the additive margin ``m`` (LaBSE uses 0.3 with a scale instead of a temperature)
is 0 by default, which is plain InfoNCE. The result is a scalar.

``extra_tgt`` (M, D), when given, adds M more candidates (hard negatives) to every src row's ranking: the
src->tgt logits become (B, B + M). The tgt->src direction ranks the B sources as before.

Similarities are computed in float32 even under autocast: with tau = 0.05 the logits reach 20, where bfloat16
rounds by 0.125.
"""

from __future__ import annotations

from typing import Final

import torch
import torch.nn.functional as F  # noqa: N812 - the usual torch alias
from torch import Tensor

DEFAULT_TEMPERATURE: Final = 0.05


def similarity_logits(src: Tensor, tgt: Tensor, temperature: float, margin: float = 0.0) -> Tensor:
    """Cosine similarities of every src row to every tgt row, minus ``margin`` on the diagonal, over tau.

    ``src`` (B, D), ``tgt`` (B, D) -> (B, B) float32 logits; row i ranks all tgt rows for src row i.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if src.ndim != 2 or src.shape != tgt.shape:
        raise ValueError(f"src and tgt must both be (batch, dim), got {tuple(src.shape)} and {tuple(tgt.shape)}")
    src_n = F.normalize(src.float(), p=2, dim=-1)  # (B, D)
    tgt_n = F.normalize(tgt.float(), p=2, dim=-1)  # (B, D)
    sims = src_n @ tgt_n.T  # (B, B)
    if margin:
        sims = sims - margin * torch.eye(sims.shape[0], device=sims.device, dtype=sims.dtype)
    return sims / temperature


def translation_ranking_loss(
    src: Tensor,
    tgt: Tensor,
    temperature: float = DEFAULT_TEMPERATURE,
    symmetric: bool = True,
    margin: float = 0.0,
    *,
    extra_tgt: Tensor | None = None,
) -> Tensor:
    """In-batch InfoNCE translation ranking of ``src`` (B, D) against ``tgt`` (B, D); returns a scalar.

    ``symmetric`` averages src->tgt and tgt->src; otherwise only src->tgt. ``margin`` is LaBSE's additive
    margin on the positive pair (0 = plain InfoNCE). ``extra_tgt`` (M, D) are more src->tgt candidates (hard
    negatives). An empty batch gives 0.
    """
    if src.shape[0] == 0:
        return (src.sum() + tgt.sum()).float()  # 0 (empty sums), still in the graph so backward() works
    logits = similarity_logits(src, tgt, temperature, margin)  # (B, B)
    labels = torch.arange(logits.shape[0], device=logits.device)  # (B,) the diagonal is the positive
    ranked = logits
    if extra_tgt is not None and extra_tgt.shape[0] > 0:
        extra = F.normalize(src.float(), dim=-1) @ F.normalize(extra_tgt.float(), dim=-1).T / temperature  # (B, M)
        ranked = torch.cat([logits, extra], dim=1)  # (B, B + M)
    forward = F.cross_entropy(ranked, labels)
    if not symmetric:
        return forward
    backward = F.cross_entropy(logits.T, labels)
    return (forward + backward) / 2
