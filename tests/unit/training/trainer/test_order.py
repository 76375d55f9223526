"""Data order: permutations from (seed, epoch), a resumable cursor, disjoint per-rank slices."""

from __future__ import annotations

import pytest

from xalign.training.trainer.order import Cursor, DataOrder, epoch_permutation, visited


def _walk(order: DataOrder, cursor: Cursor, windows: int, rank: int = 0) -> tuple[list[list[int]], Cursor]:
    taken = []
    for _ in range(windows):
        window, cursor = order.take(cursor, rank)
        taken.append(window.indices)
    return taken, cursor


def test_permutation_depends_only_on_seed_and_epoch() -> None:
    assert epoch_permutation(50, 3, 1).tolist() == epoch_permutation(50, 3, 1).tolist()
    assert sorted(epoch_permutation(50, 3, 1).tolist()) == list(range(50))
    assert epoch_permutation(50, 3, 1).tolist() != epoch_permutation(50, 3, 2).tolist()
    assert epoch_permutation(50, 3, 1).tolist() != epoch_permutation(50, 4, 1).tolist()


def test_resuming_from_the_cursor_continues_the_same_order() -> None:
    whole, _ = _walk(DataOrder(10, seed=1, batch_size=3), Cursor(), 7)
    first, cursor = _walk(DataOrder(10, seed=1, batch_size=3), Cursor(), 3)
    rest, _ = _walk(DataOrder(10, seed=1, batch_size=3), Cursor(cursor.epoch, cursor.position), 4)
    assert first + rest == whole


def test_short_last_window_is_skipped_and_the_next_epoch_starts() -> None:
    order = DataOrder(10, seed=0, batch_size=3)
    taken, cursor = _walk(order, Cursor(), 4)
    assert cursor == Cursor(1, 3)  # 3 windows of epoch 0 (9 of 10 examples), then the first of epoch 1
    assert [i for window in taken[:3] for i in window] == epoch_permutation(10, 0, 0).tolist()[:9]
    assert taken[3] == epoch_permutation(10, 0, 1).tolist()[:3]


def test_slots_take_disjoint_strided_slices_of_one_window() -> None:
    # Slot = micro-step x processes + rank: 2 processes, or 2 accumulated micro-steps, share a window alike.
    order = DataOrder(20, seed=5, batch_size=3, slots=2)
    a, next_a = order.take(Cursor(), 0)
    b, next_b = order.take(Cursor(), 1)
    assert next_a == next_b == Cursor(0, 6)
    assert set(a.indices).isdisjoint(b.indices) and len(a.indices) == len(b.indices) == 3
    permutation = epoch_permutation(20, 5, 0).tolist()
    assert a.indices == permutation[0:6:2] and b.indices == permutation[1:6:2]
    assert a.positions == [0, 2, 4]


def test_too_few_examples_or_a_bad_slot_is_refused() -> None:
    with pytest.raises(ValueError, match="fewer than one step needs"):
        DataOrder(5, seed=0, batch_size=3, slots=2)
    with pytest.raises(ValueError, match="slot 2 is outside"):
        DataOrder(6, seed=0, batch_size=3, slots=2).take(Cursor(), 2)


@pytest.mark.parametrize(("steps", "slots"), [(2, 1), (3, 1), (5, 1), (4, 2)])
def test_visited_is_what_a_run_of_that_many_steps_takes_in_each_epoch(steps: int, slots: int) -> None:
    # 10 examples, windows of 3 (or 2 x 3 across slots): epochs of 3 (or 1) windows, the short rest skipped.
    order, cursor = DataOrder(10, seed=4, batch_size=3, slots=slots), Cursor()
    taken: dict[int, list[int]] = {}
    for _ in range(steps):
        for slot in range(slots):
            window, after = order.take(cursor, slot)
            taken.setdefault(window.epoch, []).extend(window.indices)
        cursor = after
    for epoch in range(4):
        expected = sorted(taken.get(epoch, []))
        assert sorted(visited(10, 4, 3 * slots, steps, epoch).tolist()) == expected
