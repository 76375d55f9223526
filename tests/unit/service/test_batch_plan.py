"""The batch planner: least-cost cuts of a length-sorted window, checked against brute force."""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence

import pytest

from xalign.service.engine.batch_plan import BatchCost, fixed_cuts, plan_cuts


def _cost(lengths: Sequence[int], cuts: Sequence[int], cost: BatchCost) -> float:
    return sum(cost.of(end - start, lengths[end - 1]) for start, end in zip([0, *cuts], cuts, strict=False))


def _allowed(lengths: Sequence[int], cuts: Sequence[int], batch_size: int, budget: int) -> bool:
    for start, end in zip([0, *cuts], cuts, strict=False):
        rows = end - start
        if rows > batch_size or (rows > 1 and rows * lengths[end - 1] > budget):
            return False
    return True


def _brute_force(lengths: Sequence[int], batch_size: int, budget: int, cost: BatchCost) -> float:
    """The least cost over every partition into contiguous batches (2**(n-1) of them)."""
    n = len(lengths)
    best = float("inf")
    for inner in itertools.product((False, True), repeat=n - 1):
        cuts = [i + 1 for i, cut in enumerate(inner) if cut] + [n]
        if _allowed(lengths, cuts, batch_size, budget):
            best = min(best, _cost(lengths, cuts, cost))
    return best


@pytest.mark.parametrize("seed", range(12))
def test_the_plan_is_the_cheapest_partition(seed: int) -> None:
    rng = random.Random(seed)
    lengths = sorted(rng.randint(3, 80) for _ in range(rng.randint(1, 11)))
    cost = BatchCost(overhead_tokens=rng.choice([0.0, 16.0, 64.0, 400.0]), attention_tokens=rng.choice([64.0, 256.0]))
    batch_size, budget = rng.randint(1, 6), rng.choice([100, 300, 10_000])
    cuts = plan_cuts(lengths, batch_size, budget, cost)
    assert cuts[-1] == len(lengths) and cuts == sorted(set(cuts))
    assert _allowed(lengths, cuts, batch_size, budget)
    assert _cost(lengths, cuts, cost) == pytest.approx(_brute_force(lengths, batch_size, budget, cost))


def test_a_length_jump_gets_its_own_cut() -> None:
    # 16 short and 16 long texts: one batch of 32 would pad the short ones to 60 tokens.
    lengths = [5] * 16 + [60] * 16
    assert plan_cuts(lengths, 32, 8192, BatchCost()) == [16, 32]


def test_equal_lengths_take_the_fewest_batches() -> None:
    cuts = plan_cuts([12] * 70, 32, 8192, BatchCost())
    assert len(cuts) == len(fixed_cuts(70, 32)) == 3  # any 3 batches of 70 equal texts cost the same


def test_a_large_overhead_means_the_fewest_batches() -> None:
    lengths = sorted(random.Random(1).randint(3, 60) for _ in range(100))
    assert len(plan_cuts(lengths, 32, 8192, BatchCost(overhead_tokens=1e9))) == len(fixed_cuts(100, 32))


def test_a_text_over_the_token_budget_forms_a_batch_alone() -> None:
    assert plan_cuts([4, 4, 900], 32, 512, BatchCost()) == [2, 3]


def test_no_texts_no_batches() -> None:
    assert plan_cuts([], 32, 8192, BatchCost()) == [] == fixed_cuts(0, 32)
