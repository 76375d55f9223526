"""Multi-process training under ``torchrun``: process group, DDP wrapping, and averaging across processes.

``torchrun --nproc_per_node N`` sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``; with ``WORLD_SIZE`` > 1
``init_distributed`` joins the process group (gloo on CPU, nccl on CUDA). Only rank 0 logs, draws the
progress bar, evaluates and saves; every process trains on its own slice of each window (``order.py``).
The environment is read when ``init_distributed`` is called, never at import.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel


@dataclass(frozen=True)
class DistContext:
    """This process's place in the run: ``rank`` of ``world_size``, and the device it trains on."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        """True on the process that logs, evaluates and saves (rank 0)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True when more than one process trains."""
        return self.world_size > 1


def init_distributed(device: str = "auto") -> DistContext:
    """Join the process group when ``WORLD_SIZE`` > 1 (set by torchrun); pick this process's device.

    ``device`` ``auto`` takes GPU ``LOCAL_RANK`` when CUDA is available, else the CPU; ``cpu`` and ``cuda`` insist.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: the recipe asks for cuda, but torch sees no CUDA device")
    cuda = device != "cpu" and torch.cuda.is_available()
    chosen = torch.device(f"cuda:{local_rank}" if cuda else "cpu")
    if cuda:
        torch.cuda.set_device(chosen)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo", rank=rank, world_size=world_size)
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank, device=chosen)


def wrap(module: nn.Module, context: DistContext) -> nn.Module:
    """``module`` in ``DistributedDataParallel`` when several processes train, else unchanged."""
    if not context.distributed:
        return module
    device_ids = [context.device.index] if context.device.type == "cuda" else None
    # Unused parameters are allowed: a base model may carry layers (e.g. a pooler) that no objective touches.
    return DistributedDataParallel(module, device_ids=device_ids, find_unused_parameters=True)


def no_sync(module: nn.Module, skip: bool) -> Any:
    """DDP's ``no_sync`` (gradients stay local) for all but the last micro-step of an accumulation."""
    if skip and isinstance(module, DistributedDataParallel):
        return module.no_sync()
    return nullcontext()


def mean_across(values: Mapping[str, float], context: DistContext) -> dict[str, float]:
    """The mean of each value over all processes (unchanged when training alone)."""
    if not context.distributed or not values:
        return dict(values)
    names = sorted(values)
    tensor = torch.tensor([values[name] for name in names], dtype=torch.float64)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return {name: float(v) / context.world_size for name, v in zip(names, tensor.tolist(), strict=True)}


def barrier(context: DistContext) -> None:
    """Wait for every process (a no-op when training alone)."""
    if context.distributed:
        dist.barrier()


@contextmanager
def process_group(context: DistContext) -> Iterator[DistContext]:
    """Yield ``context``; then wait for the other processes (not after an error: they may be gone) and leave."""
    try:
        yield context
        barrier(context)
    finally:
        if context.distributed and dist.is_initialized():
            dist.destroy_process_group()
