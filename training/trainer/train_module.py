"""The module that trains: the encoder plus one task per objective, returning the weighted total loss.

One ``forward`` per micro-step computes every objective, so ``DistributedDataParallel`` sees exactly one
forward per backward. The encoder is what a checkpoint exports; task heads (RTL decoder, MLM head) are only
kept in the training state. Gradient caching (``training/objectives/grad_cache.py``) calls ``forward`` twice
more per micro-step: ``embed_only`` for the sentence embeddings of a chunk of texts (through DDP, so their
gradients are synchronised), and with ``pooled`` for the losses of embeddings computed without gradients.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from xalign.training.evaluate.encoder import Pooling
from xalign.training.trainer.batches import Batch, Needs
from xalign.training.trainer.tasks import StepContext, Task, combined_needs


class TrainModule(nn.Module):
    """``encoder`` (a transformers model) and ``tasks`` by objective name; see the module docstring."""

    def __init__(
        self, encoder: nn.Module, tasks: Mapping[str, Task], pooling: Pooling, frozen_layers: int | None = None
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.tasks = nn.ModuleDict(dict(tasks))
        self.pooling: Pooling = pooling
        self.frozen_layers = frozen_layers  # set when batches carry the frozen layers' states (frozen_states.py)

    def needs(self) -> Needs:
        """What every batch must hold for these tasks."""
        return combined_needs([self._task(name) for name in self.tasks])

    def _task(self, name: str) -> Task:
        task = self.tasks[name]
        if not isinstance(task, Task):
            raise TypeError(f"{name}: not a Task")
        return task

    def forward(
        self, batch: Batch, *, embed_only: bool = False, pooled: Tensor | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """(weighted total loss, detached loss of each objective and of its named parts).

        ``embed_only``: (pooled embeddings (N, H) of the batch's texts, {}) instead. ``pooled`` (N, H): the
        losses of these embeddings of the batch's texts, the encoder not run.
        """
        context = StepContext(self.encoder, batch, self.pooling, self.frozen_layers, pooled)
        if embed_only:
            return context.pooled, {}
        total: Tensor | None = None
        losses: dict[str, Tensor] = {}
        for name in self.tasks:
            task = self._task(name)
            output = task(batch, context)
            weighted = task.weight * output.loss
            total = weighted if total is None else total + weighted
            losses[name] = output.loss.detach()
            losses.update({f"{name}.{part}": value.detach() for part, value in output.parts.items()})
        if total is None:
            raise RuntimeError("no objectives to train")
        return total, losses

    def heads_state(self) -> dict[str, dict[str, Any]]:
        """State dicts of the tasks that have parameters (the training-only heads)."""
        return {name: task.state_dict() for name, task in self.tasks.items() if len(task.state_dict()) > 0}

    def load_heads_state(self, state: Mapping[str, Mapping[str, Any]]) -> None:
        """Restore the heads saved by ``heads_state``; every head must be present, and nothing else."""
        expected = set(self.heads_state())
        if set(state) != expected:
            raise ValueError(f"checkpoint has heads {sorted(state)}, this recipe has {sorted(expected)}")
        for name, task_state in state.items():
            self.tasks[name].load_state_dict(task_state)


def frozen_parameter(name: str, *, embeddings: bool, top_layers: int | None = None, num_layers: int = 0) -> bool:
    """Whether the trainer keeps encoder parameter ``name`` fixed (see ``freeze``).

    ``top_layers`` N of ``num_layers``: everything but ``encoder.layer.{num_layers - N} ..
    encoder.layer.{num_layers - 1}`` is fixed (embeddings and pooler included).
    """
    if name.startswith("pooler."):
        return True
    if top_layers is not None:
        return not any(name.startswith(f"encoder.layer.{i}.") for i in range(num_layers - top_layers, num_layers))
    return embeddings and name.startswith("embeddings.")


def freeze(encoder: nn.Module, *, embeddings: bool, top_layers: int | None = None) -> list[str]:
    """Stop training parameters that no objective should change; returns their names.

    The pooler (a dense layer on the first token that transformers BERT models carry) never reaches a sentence
    embedding here (pooling is computed from the token states), so it is always frozen. With ``embeddings``
    the whole embedding layer (word, position and token-type embeddings and their LayerNorm) is frozen too.
    With ``top_layers`` N only the top N of the encoder's ``config.num_hidden_layers`` layers stay trainable.
    """
    num_layers = int(getattr(getattr(encoder, "config", None), "num_hidden_layers", 0))
    frozen = []
    for name, param in encoder.named_parameters():
        if frozen_parameter(name, embeddings=embeddings, top_layers=top_layers, num_layers=num_layers):
            param.requires_grad_(False)
            frozen.append(name)
    return frozen
