"""Pooling token states into one vector per text: the one definition the trainer, the evaluation harness and
the exported ONNX graphs (``export/dual_encoder.py``, ``export/backpack_graph.py``) share.

Only tensor methods are used, so importing this module needs no torch (the type hints import it lazily), and
the ``last`` mode gathers instead of indexing with a Python range, so ``torch.export`` keeps the batch axis
symbolic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, get_args

if TYPE_CHECKING:
    import torch

Pooling = Literal["mean", "cls", "last"]
POOLING_MODES: tuple[str, ...] = get_args(Pooling)


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: Pooling) -> torch.Tensor:
    """Reduce token states ``(batch, seq, dim)`` to ``(batch, dim)``; padded positions never contribute.

    ``mean`` averages non-padding tokens (E5, sentence-transformers); ``cls`` takes the first token;
    ``last`` the last non-padding token (right padding assumed).
    """
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "last":
        # Right padding: the last real token sits at length - 1.
        last = attention_mask.sum(dim=1) - 1  # (batch,)
        index = last.clamp(min=0).view(-1, 1, 1).expand(-1, 1, hidden.shape[-1])  # (batch, 1, dim)
        return hidden.gather(1, index).squeeze(1)
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (batch, seq, 1)
    summed = (hidden * mask).sum(dim=1)  # (batch, dim)
    # An all-padding row would divide by zero; clamping keeps it finite (and zero).
    counts = mask.sum(dim=1).clamp(min=1e-9)  # (batch, 1)
    return summed / counts
