"""``gather_negatives``: under DDP every process's batch is a negative of every other's, with exact gradients.

Two gloo processes with 4 rows each must compute (after DDP averages their gradients) the gradients of one
process with all 8 rows: the loss over the gathered batch, its gradient reaching each process's own rows.
Without gathering each process ranks only its 4 rows, and the gradients differ (the test can fail). Gradient
caching over the gathered batch gives the same gradients.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.multiprocessing as mp
from processes import free_port
from trainer_recipes import DATA, recipe_dict

from xalign.training.trainer.distributed import DistContext

sys.path.insert(0, str(Path(__file__).parent))  # the spawned processes import the worker by name
from gather_worker import Job, first_step_gradients, worker


def two_process_gradients(raws: list[dict[str, Any]], tmp_path: Path) -> list[dict[str, torch.Tensor]]:
    out = tmp_path / "ddp-gradients.pt"
    mp.spawn(worker, args=(Job(2, free_port(), raws, DATA, out),), nprocs=2, join=True)
    gradients: list[dict[str, torch.Tensor]] = torch.load(out, weights_only=True)
    return gradients


def assert_equal_gradients(got: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    """Equal up to float rounding: sums over tokens added in another order differ by ~1e-5 of the gradients' scale
    (some gradients, such as the key biases', are 0 but for rounding)."""
    assert set(got) == set(expected)
    scale = max(float(grad.abs().max()) for grad in expected.values())
    for name, grad in expected.items():
        torch.testing.assert_close(got[name], grad, rtol=1e-4, atol=1e-4 * scale, msg=name)


def test_two_processes_with_half_the_batch_each_get_the_whole_batch_gradients(
    still_model: Path, tmp_path: Path
) -> None:
    mixes = ("en_x", "multiway")
    whole = [
        first_step_gradients(recipe_dict(still_model, tmp_path / f"one-{mix}", mix, batch_size=8), DATA, DistContext())
        for mix in mixes
    ]
    gathered = [recipe_dict(still_model, tmp_path / mix, mix, batch_size=4, gather_negatives=True) for mix in mixes]
    # Gradient caching under DDP: the chunks' backward passes are synchronised once, on the last chunk.
    chunked = recipe_dict(still_model, tmp_path / "chunked", "en_x", batch_size=4, gather_negatives=True,
                          grad_cache_chunk=3)  # fmt: skip
    alone = recipe_dict(still_model, tmp_path / "alone", "en_x", batch_size=4)
    *two, cached, apart = two_process_gradients([*gathered, chunked, alone], tmp_path)
    for got, expected in zip([*two, cached], [*whole, whole[0]], strict=True):
        assert_equal_gradients(got, expected)
    with pytest.raises(AssertionError):
        assert_equal_gradients(apart, whole[0])
