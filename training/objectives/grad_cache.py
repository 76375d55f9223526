"""Gradient caching: a contrastive loss over a large batch with the activation memory of a small chunk.

Gao, Zhang, Han, Callan 2021, "Scaling Deep Contrastive Learning Batch Size under Memory Limited Setup"
(RepL4NLP). An in-batch loss couples every embedding of the batch, but it depends on the encoder only through
the embeddings. So:

1. embed the batch chunk by chunk without gradients (no activations kept), recording each chunk's random state;
2. compute the loss on the concatenated embeddings ``E`` (N, H) as a leaf and back-propagate it to ``E`` only:
   ``G = dL/dE``;
3. embed each chunk again with gradients, under the random state of step 1 (the same dropout, so the same
   embeddings), and back-propagate ``G``'s rows of that chunk into the encoder; the parameter gradients add up
   over the chunks to exactly ``dL/dtheta``.

The loss must have no parameters of its own (it would receive its gradient in step 2, outside the chunk
passes); the trainer allows gradient caching only for such losses (``training/recipes/efficiency.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import torch
from torch import Tensor

# The loss of the whole batch's embeddings (N, H): (total, named detached parts).
LossFn = Callable[[Tensor], tuple[Tensor, dict[str, Tensor]]]


def capture_rng() -> dict[str, Any]:
    """The torch random states (CPU, and every CUDA device when there is one)."""
    state: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Set the random states ``capture_rng`` returned."""
    torch.set_rng_state(state["cpu"])
    if "cuda" in state:
        torch.cuda.set_rng_state_all(state["cuda"])


def grad_cache_step(
    chunks: int,
    embed: Callable[[int], Tensor],
    loss: LossFn,
    sync: Callable[[bool], AbstractContextManager[Any]],
    scale: float = 1.0,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Back-propagate ``scale * loss`` of the ``chunks`` chunks' embeddings, one chunk's activations at a time.

    ``embed(i)`` embeds chunk ``i`` (n_i, H); ``sync(last)`` is the context of a chunk's backward (DDP's
    ``no_sync`` for all but the last). Returns the loss (detached) and its parts.
    """
    states, parts = [], []
    with torch.no_grad():
        for index in range(chunks):
            states.append(capture_rng())
            parts.append(embed(index))
    embeddings = torch.cat(parts).requires_grad_()  # (N, H), a leaf
    total, losses = loss(embeddings)
    torch.autograd.backward(total * scale)
    if embeddings.grad is None:
        raise RuntimeError("the loss does not depend on the embeddings")
    cached = torch.split(embeddings.grad, [part.shape[0] for part in parts])  # (n_i, H) each
    for index, (state, grad) in enumerate(zip(states, cached, strict=True)):
        restore_rng(state)
        with sync(index == chunks - 1):
            torch.autograd.backward(embed(index), grad)
    return total.detach(), losses
