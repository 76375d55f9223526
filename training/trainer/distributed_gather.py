"""In-batch negatives from every process: gather embeddings across ranks with the local rows' gradients kept.

Under DDP each process embeds its own micro-batch. ``gather_rows`` returns the rows of all processes in rank
order: the other processes' rows are constants (``all_gather`` has no gradient), this process's rows are its
own tensor, so the loss reaches them with autograd. Every process then computes the same loss ``L`` over the
global batch and gets ``dL/d(own rows)``; the true gradient of the parameters is the *sum* of the processes'
contributions, while DDP *averages* them. So the local rows' gradient is multiplied by the number of processes
on the way back (``ScaleGradient``), and the average DDP takes is exactly ``dL/dtheta``; the loss value itself
is not scaled (what is logged is ``L``).

Processes may hold different numbers of rows (sizes are gathered first, rows padded to the largest and cut
back). Outside a process group (one process) everything is returned unchanged.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, cast

import torch
import torch.distributed as dist
from torch import Tensor


class ScaleGradient(torch.autograd.Function):
    """The identity forward; the gradient multiplied by ``factor`` backward."""

    @staticmethod
    def forward(ctx: Any, tensor: Tensor, factor: float) -> Tensor:
        """``tensor`` unchanged (a view, so autograd records this node)."""
        ctx.factor = factor
        return tensor.view_as(tensor)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        """``factor * grad``; no gradient for ``factor``."""
        return grad * ctx.factor, None


def world() -> tuple[int, int]:
    """(rank, world size) of the process group, or (0, 1) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather_rows(local: Tensor) -> Tensor:
    """Every process's rows of ``local`` (n_r, ...) concatenated in rank order (sum n_r, ...); see the module doc."""
    rank, size = world()
    if size == 1:
        return local
    counts = [torch.zeros(1, dtype=torch.long, device=local.device) for _ in range(size)]
    dist.all_gather(counts, torch.tensor([local.shape[0]], dtype=torch.long, device=local.device))
    sizes = [int(count.item()) for count in counts]
    padded = torch.zeros((max(sizes), *local.shape[1:]), dtype=local.dtype, device=local.device)
    padded[: local.shape[0]] = local.detach()
    parts = [torch.empty_like(padded) for _ in range(size)]
    dist.all_gather(parts, padded)
    rows = [part[:n] for part, n in zip(parts, sizes, strict=True)]
    rows[rank] = cast(Tensor, ScaleGradient.apply(local, float(size))) if local.requires_grad else local  # type: ignore[no-untyped-call]
    return torch.cat(rows)


def union_languages(languages: Sequence[str]) -> tuple[str, ...]:
    """The sorted union of every process's ``languages``."""
    _, size = world()
    if size == 1:
        return tuple(languages)
    gathered: list[Any] = [None] * size
    dist.all_gather_object(gathered, list(languages))
    return tuple(sorted({lang for part in gathered for lang in part}))


def gather_multiway(emb: Tensor, present: Tensor, languages: Sequence[str]) -> tuple[Tensor, Tensor]:
    """A multi-way table of every process: ``emb`` (B, L, H) and ``present`` (B, L) over ``languages`` become
    (sum B_r, L_all, H) and (sum B_r, L_all) over the sorted union of all processes' languages."""
    union = union_languages(languages)
    if tuple(languages) != union:
        columns = torch.tensor([union.index(lang) for lang in languages], device=emb.device)
        wide = emb.new_zeros((emb.shape[0], len(union), emb.shape[2]))
        emb = wide.index_copy(1, columns, emb)  # (B, L_all, H); absent columns hold zeros
        present = present.new_zeros((present.shape[0], len(union))).index_copy(1, columns, present)
    return gather_rows(emb), gather_rows(present.long()).bool()


def shared_chunks(rows: int, chunk: int, device: torch.device | None = None) -> list[slice]:
    """``rows`` split into as many nearly equal chunks of at most ``chunk`` rows as every process takes.

    Every process must run the same number of forward passes (DDP's collectives pair them up), so the count is
    set by the process with the most rows (and capped by the one with the fewest).
    """
    count = -(-rows // chunk)
    _, size = world()
    if size > 1:
        counts = torch.tensor([count, -rows], dtype=torch.long, device=device)
        dist.all_reduce(counts, op=dist.ReduceOp.MAX)
        count = min(int(counts[0]), -int(counts[1]))
    bounds = [round(i * rows / count) for i in range(count + 1)]
    return [slice(a, b) for a, b in itertools.pairwise(bounds)]
