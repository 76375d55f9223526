"""The order in which training examples are seen, and the cursor that lets a resumed run continue it.

Each epoch is a permutation of the examples drawn from ``(seed, epoch)`` alone, so the order does not depend
on how the run was interrupted. One optimizer step takes the next window of ``batch_size * slots`` positions
of the permutation, where ``slots = grad_accum * world_size`` is the number of micro-batches of the step across
all processes. Slot ``micro * world_size + rank`` takes the strided slice ``window[slot::slots]`` (as
``DistributedSampler`` strides over ranks), so micro-batches and processes see disjoint examples. Because only
the slot number matters, N processes with ``grad_accum`` 1 see exactly the micro-batches that one process with
``grad_accum`` N sees. An epoch's last window that would be short is skipped (every micro-batch is full) and
the next epoch starts. ``permute`` replaces the random permutation (``epoch_mining.py``: batches of near
neighbours); it too must depend on the epoch alone.

The cursor ``(epoch, position)`` is global, the same in every process; it is what a checkpoint stores.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class Cursor:
    """Where the next micro-step's window starts: ``position`` in the permutation of ``epoch``."""

    epoch: int = 0
    position: int = 0


@dataclass(frozen=True)
class Window:
    """One slot's share of a step's window: example ``indices`` and their ``positions`` in ``epoch``."""

    epoch: int
    indices: list[int]
    positions: list[int]


def epoch_permutation(size: int, seed: int, epoch: int) -> npt.NDArray[np.int64]:
    """The order of ``size`` examples in ``epoch``: a permutation determined by ``(seed, epoch)`` only."""
    rng = np.random.default_rng([seed, epoch])
    return rng.permutation(size).astype(np.int64)


def visited(size: int, seed: int, window: int, steps: int, epoch: int) -> npt.NDArray[np.int64]:
    """The examples a run of ``steps`` steps of ``window`` examples takes in ``epoch`` of the random order."""
    per_epoch = size // window  # an epoch's short last window is skipped
    taken = max(0, min(per_epoch, steps - epoch * per_epoch))
    return epoch_permutation(size, seed, epoch)[: taken * window]


class DataOrder:
    """Deterministic, resumable, sharded order over ``size`` examples (see the module docstring)."""

    def __init__(
        self,
        size: int,
        seed: int,
        batch_size: int,
        slots: int = 1,
        permute: Callable[[int], npt.NDArray[np.int64]] | None = None,
    ) -> None:
        self.window = batch_size * slots
        if size < self.window:
            raise ValueError(
                f"{size} training examples are fewer than one step needs "
                f"(batch_size {batch_size} x {slots} micro-batch(es) of grad_accum x processes = {self.window})"
            )
        self.size = size
        self.seed = seed
        self.batch_size = batch_size
        self.slots = slots
        self.permute = permute
        self._cached: tuple[int, npt.NDArray[np.int64]] | None = None

    def permutation(self, epoch: int) -> npt.NDArray[np.int64]:
        """The permutation of ``epoch`` (the last one is cached)."""
        if self._cached is None or self._cached[0] != epoch:
            chosen = self.permute(epoch) if self.permute is not None else epoch_permutation(self.size, self.seed, epoch)
            self._cached = (epoch, chosen)
        return self._cached[1]

    def take(self, cursor: Cursor, slot: int = 0) -> tuple[Window, Cursor]:
        """Slot ``slot``'s examples of the step window at ``cursor``, and the cursor after the whole window."""
        if not 0 <= slot < self.slots:
            raise ValueError(f"slot {slot} is outside 0..{self.slots - 1}")
        if cursor.position + self.window > self.size:
            cursor = Cursor(cursor.epoch + 1, 0)
        start = cursor.position
        positions = list(range(start + slot, start + self.window, self.slots))
        order = self.permutation(cursor.epoch)
        window = Window(cursor.epoch, [int(order[p]) for p in positions], positions)
        return window, Cursor(cursor.epoch, start + self.window)
