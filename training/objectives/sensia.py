"""SENSIA: adapting an English Backpack LM to a new language through sense-level alignment on parallel text.

SENSIA (the seed paper of the Backpack experiment, ``benchmarks/backpack/run.py``: "SENSIA" adapts a
pretrained English Backpack to a target language by aligning, on parallel sentence pairs, the *sense-level
mixtures* and the *contextual representations* of a sentence and of its translation, while a target-language
LM loss teaches the model the new language). The paper's exact pooling, temperature and loss weights could
not be checked here, so the choices below are ours and are stated where they are made.

Inputs for a batch of ``B`` parallel pairs, d = ``n_embd``, k = ``n_senses``, right padding, mask 1 = token:

    source (English) ids / mask     (B, s_src)
    target ids / mask               (B, s_tgt)     row b of target translates row b of source

Per sentence, from ``Backpack.represent`` (senses C(x) (B, s, k, d), alpha (B, k, s, s), contextual o
(B, s, d)), with n = the number of real tokens and i ranging over real positions:

    sense mixture      m[l] = 1/n * sum_i sum_j alpha[l, i, j] * C(x_j)[l]        (B, k, d)
    contextual pooled  c    = 1/n * sum_i o_i = sum_l m[l]                        (B, d)

so ``m`` splits the mean-pooled contextual output into the k senses' shares (its sum over senses is ``c``).
The mixture is compared sense by sense: each m[l] is L2-normalised and the k unit vectors concatenated and
scaled by 1/sqrt(k) into one (B, k*d) unit vector, whose cosine with another is the mean over senses of the
per-sense cosines (our choice: it keeps one sense with a large norm from dominating the comparison).

Losses (each a scalar):

    target_lm      lm_loss on the target sentences (next-token cross-entropy, padding skipped)
    source_lm      lm_loss on the English sentences (our addition, weight 0 turns it off: it keeps English
                   working in the adapted model, which the served model needs; the "joint" baseline is SENSIA
                   with both alignment weights 0, so the comparison isolates the alignment losses)
    sense_align    symmetric in-batch InfoNCE between the sense-mixture vectors of source and target
    context_align  symmetric in-batch InfoNCE between the pooled contextual vectors (cosine) of source and target

    total = w_tlm * target_lm + w_slm * source_lm + w_sense * sense_align + w_ctx * context_align

InfoNCE is ``translation_ranking_loss`` (symmetric: the mean of source->target and target->source
cross-entropies over cosine similarities / temperature; every other pair of the batch is a negative). With
perfectly aligned, mutually orthogonal pairs it reaches its minimum for the batch,
log(1 + (B - 1) * exp(-1 / temperature)). Gradients flow into both sides (no stop-gradient on English).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F  # noqa: N812 - the usual torch alias
from torch import Tensor

from xalign.training.models.backpack import Backpack, lm_loss
from xalign.training.objectives.sensia_weights import SensiaWeights
from xalign.training.objectives.translation_ranking import translation_ranking_loss


class TokenBatch(NamedTuple):
    """Right-padded token ids and their mask, both (batch, seq) int64."""

    input_ids: Tensor
    attention_mask: Tensor


class SensiaLosses(NamedTuple):
    """The weighted total and each unweighted term (0 where a term's weight is 0)."""

    total: Tensor
    target_lm: Tensor
    source_lm: Tensor
    sense_align: Tensor
    context_align: Tensor


def position_weights(attention_mask: Tensor) -> Tensor:
    """1/n on each real position, 0 on padding: (batch, seq) -> (batch, seq) float."""
    mask = attention_mask.float()
    return mask / mask.sum(dim=1, keepdim=True).clamp(min=1.0)


def sense_mixtures(senses: Tensor, alpha: Tensor, attention_mask: Tensor) -> Tensor:
    """m[b, l] = 1/n * sum_i sum_j alpha[b, l, i, j] * C(x_j)[b, l] over real positions i.

    senses (batch, seq, k, d), alpha (batch, k, seq, seq), mask (batch, seq) -> (batch, k, d).
    """
    per_source = torch.einsum("bi,blij->blj", position_weights(attention_mask), alpha)  # (batch, k, seq)
    return torch.einsum("blj,bjld->bld", per_source, senses)


def mixture_vectors(mixtures: Tensor) -> Tensor:
    """Per-sense unit vectors concatenated and scaled by 1/sqrt(k): (batch, k, d) -> (batch, k*d), unit norm."""
    k = mixtures.shape[1]
    return F.normalize(mixtures, dim=-1).flatten(1) / math.sqrt(k)


def pooled_contextual(contextual: Tensor, attention_mask: Tensor) -> Tensor:
    """Masked mean of the contextual outputs: (batch, seq, d) -> (batch, d) (not normalised)."""
    return torch.einsum("bi,bid->bd", position_weights(attention_mask), contextual)


def sense_alignment_loss(src_mix: Tensor, tgt_mix: Tensor, temperature: float) -> Tensor:
    """Symmetric InfoNCE between sense mixtures (batch, k, d) of sentences and of their translations."""
    return translation_ranking_loss(mixture_vectors(src_mix), mixture_vectors(tgt_mix), temperature, symmetric=True)


def context_alignment_loss(src_pooled: Tensor, tgt_pooled: Tensor, temperature: float) -> Tensor:
    """Symmetric InfoNCE between pooled contextual vectors (batch, d) (cosine similarity)."""
    return translation_ranking_loss(src_pooled, tgt_pooled, temperature, symmetric=True)


def sensia_losses(model: Backpack, source: TokenBatch, target: TokenBatch, weights: SensiaWeights) -> SensiaLosses:
    """The SENSIA objective on one batch of parallel pairs (see the module docstring for every term)."""
    zero = torch.zeros((), device=target.input_ids.device)
    tgt = model(target.input_ids, target.attention_mask)
    target_lm = lm_loss(tgt.logits, target.input_ids, target.attention_mask)
    source_lm, sense, context = zero, zero, zero
    if weights.source_lm > 0 or weights.aligns:
        src = model(source.input_ids, source.attention_mask)
        if weights.source_lm > 0:
            source_lm = lm_loss(src.logits, source.input_ids, source.attention_mask)
        if weights.sense_align > 0:
            src_mix = sense_mixtures(src.senses, src.alpha, source.attention_mask)  # (batch, k, d)
            tgt_mix = sense_mixtures(tgt.senses, tgt.alpha, target.attention_mask)
            sense = sense_alignment_loss(src_mix, tgt_mix, weights.temperature)
        if weights.context_align > 0:
            src_pool = pooled_contextual(src.contextual, source.attention_mask)  # (batch, d)
            tgt_pool = pooled_contextual(tgt.contextual, target.attention_mask)
            context = context_alignment_loss(src_pool, tgt_pool, weights.temperature)
    total = (
        weights.target_lm * target_lm
        + weights.source_lm * source_lm
        + weights.sense_align * sense
        + weights.context_align * context
    )
    return SensiaLosses(total=total, target_lm=target_lm, source_lm=source_lm, sense_align=sense, context_align=context)
