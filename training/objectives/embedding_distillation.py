"""Embedding distillation from the frozen base: keep the base's space, move translations into it.

Multilingual knowledge distillation (Reimers & Gurevych 2020, "Making Monolingual Sentence Embeddings
Multilingual using Knowledge Distillation", EMNLP): a frozen teacher embeds the pivot side of each pair, and
the student is trained so that both the pivot sentence and its translation land on the teacher's vector.
Here the teacher is the untouched base model itself, so the term is an anchor: beside a ranking loss it keeps
the pivot language (English) where the base had it, which is what bitext mining and every index built with
the base rely on, while the translations are pulled onto it.

Inputs: ``student_src`` and ``student_tgt`` (B, D) are the student's pooled embeddings of the source and of
its translation (the pivot), ``teacher_tgt`` (B, D) the teacher's embedding of the pivot (no gradient). Where
the paper takes the MSE of raw vectors, the embeddings here are compared by cosine, the measure the model is
used with::

    loss = mean_i (1 - cos(student_src_i, teacher_tgt_i))
         + anchor_weight * mean_i (1 - cos(student_tgt_i, teacher_tgt_i))

(``1 - cos`` is half the squared distance of the L2-normalised vectors.) The result is a scalar, 0 when the
student reproduces the teacher on the pivot and maps every translation onto it.
"""

from __future__ import annotations

import torch.nn.functional as F  # noqa: N812 - the usual torch alias
from torch import Tensor


def cosine_distance(a: Tensor, b: Tensor) -> Tensor:
    """Mean of ``1 - cos`` over the rows of ``a`` and ``b`` (both (B, D)), in float32; a scalar."""
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"expected two (batch, dim) tensors of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    return (1 - F.cosine_similarity(a.float(), b.float(), dim=-1)).mean()


def embedding_distillation_loss(
    student_src: Tensor, student_tgt: Tensor, teacher_tgt: Tensor, anchor_weight: float = 1.0
) -> Tensor:
    """Translation-onto-teacher plus ``anchor_weight`` times pivot-onto-teacher distance (module docstring)."""
    if student_src.shape[0] == 0:
        return (student_src.sum() + student_tgt.sum()).float()  # 0, still in the graph
    teacher = teacher_tgt.detach()
    return cosine_distance(student_src, teacher) + anchor_weight * cosine_distance(student_tgt, teacher)
