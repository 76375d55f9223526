"""One process of the gather test (``test_gather_negatives.py``): the gradients of DDP micro-steps.

Spawned by ``torch.multiprocessing``; not a test module. For each recipe in turn, rank 0 keeps the parameter
gradients of micro-step 0 after DDP has averaged them, and saves the list (one spawn: starting processes
is the slow part).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from xalign.training.recipes.loader import recipe_from_mapping
from xalign.training.trainer.build import build_run
from xalign.training.trainer.distributed import DistContext, init_distributed, process_group
from xalign.training.trainer.loop import Loop


def first_step_gradients(raw: dict[str, Any], data: Path, context: DistContext) -> dict[str, torch.Tensor]:
    """The parameter gradients after micro-step 0 of the recipe ``raw`` (after DDP's averaging)."""
    run = build_run(recipe_from_mapping(raw, data), context)
    loss, _ = Loop(run)._micro_step(0)
    assert torch.isfinite(loss)
    return {name: p.grad.clone() for name, p in run.module.named_parameters() if p.grad is not None}


@dataclass(frozen=True)
class Job:
    """What every process of the test gets: the group size and port, the recipes, and where rank 0 saves."""

    world_size: int
    port: int
    raws: list[dict[str, Any]]
    data: Path
    out: Path


def worker(rank: int, job: Job) -> None:
    """Join the gloo group as ``rank`` and save rank 0's gradients to ``job.out``."""
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(job.port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(job.world_size))  # fmt: skip
    context = init_distributed("cpu")
    with process_group(context):
        gradients = [first_step_gradients(raw, job.data, context) for raw in job.raws]
        if rank == 0:
            torch.save(gradients, job.out)
