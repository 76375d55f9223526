"""AdamW with linear warmup and linear, cosine or no decay.

``lr_factor(step)`` multiplies the peak learning rate at optimizer step ``step`` (0-based). Warmup rises
linearly to 1 at the last warmup step ((step + 1) / warmup, so the first step already learns); then the
factor decays from 1 towards 0 over the remaining steps, never reaching 0 on a step that is taken:
``linear`` 1 - p, ``cosine`` (1 + cos(pi p)) / 2, ``constant`` 1, with p = (step - warmup) / (total - warmup).

Biases and normalisation weights get no weight decay (as in BERT and sentence-transformers).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from xalign.training.recipes.recipe import Decay


def lr_factor(step: int, warmup: int, total: int, decay: Decay) -> float:
    """The learning-rate multiplier at 0-based optimizer step ``step`` of ``total`` (see the module doc)."""
    if step < warmup:
        return (step + 1) / warmup
    if decay == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    if decay == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return max(0.0, 1.0 - progress)


def _no_decay(name: str, param: nn.Parameter) -> bool:
    # 1-d parameters are biases and LayerNorm weights (and the vocab bias of MLM heads).
    return param.ndim < 2 or name.endswith(".bias")


def build_optimizer(named: Iterable[tuple[str, nn.Parameter]], lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW over the trainable parameters of ``named``, without weight decay on biases and norms."""
    decay: list[nn.Parameter] = []
    plain: list[nn.Parameter] = []
    for name, param in named:
        if param.requires_grad:
            (plain if _no_decay(name, param) else decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr)


def build_scheduler(
    optimizer: torch.optim.Optimizer, warmup: int, total: int, decay: Decay
) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` applying ``lr_factor``; call ``step()`` once after every optimizer step."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, warmup, total, decay))
