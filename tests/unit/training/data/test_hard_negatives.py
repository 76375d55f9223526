"""Hard-negative mining and grouped batches on synthetic vectors."""

from __future__ import annotations

import numpy as np

from xalign.training.data.grouped_batches import grouped_permutation, split_tree
from xalign.training.data.hard_negatives import mine_hard_negatives


def unit(vectors: np.ndarray) -> np.ndarray:
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def corpus(n: int = 40, dim: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n pairs: targets random unit vectors, sources their noisy translations."""
    rng = np.random.default_rng(seed)
    tgt = unit(rng.standard_normal((n, dim)))
    return unit(tgt + 0.1 * rng.standard_normal((n, dim))), tgt


def test_the_negatives_are_the_nearest_non_translations() -> None:
    src, tgt = corpus()
    found = mine_hard_negatives(src, tgt, np.arange(40), count=3, margin=0.0)
    sims = src @ tgt.T
    np.fill_diagonal(sims, -np.inf)
    expected = np.argsort(-sims, axis=1)[:, :3]
    assert np.array_equal(found, expected)


def test_the_margin_drops_a_planted_paraphrase_and_duplicates_are_skipped() -> None:
    src, tgt = corpus()
    tgt[7] = unit(tgt[3:4] + 0.01)[0]  # target 7 paraphrases target 3
    tgt[9] = tgt[3]  # target 9 is target 3's text again (duplicate group 3)
    duplicates = np.arange(40)
    duplicates[9] = 3
    plain = mine_hard_negatives(src, tgt, np.arange(40), count=2, margin=0.0)
    assert 7 in plain[3]  # without a margin the paraphrase is source 3's hardest "negative"
    mined = mine_hard_negatives(src, tgt, duplicates, count=2, margin=0.1)
    assert 7 not in mined[3] and 9 not in mined[3] and 3 not in mined[9]
    sims = src[3] @ tgt.T
    allowed = [j for j in np.argsort(-sims) if sims[j] < sims[3] - 0.1 and duplicates[j] != 3]
    assert mined[3].tolist() == allowed[:2]


def test_pools_bound_the_search_and_short_pools_pad_with_minus_one() -> None:
    src, tgt = corpus(n=10)
    pools = [np.arange(0, 6), np.arange(6, 10)]
    found = mine_hard_negatives(src, tgt, np.arange(10), count=4, margin=0.0, pools=pools)
    assert set(found[:6].ravel()) <= set(range(6))
    assert (found[6:, 3] == -1).all() and set(found[6:, :3].ravel()) <= set(range(6, 10))


def clusters(groups: int = 8, size: int = 4, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = unit(rng.standard_normal((groups, 24)))
    return unit(np.repeat(centres, size, axis=0) + 0.01 * rng.standard_normal((groups * size, 24)))


def test_the_tree_groups_near_neighbours() -> None:
    vectors = clusters()
    shuffled = np.random.default_rng(2).permutation(len(vectors))
    leaves = split_tree(vectors[shuffled], 4, np.random.default_rng(0))
    assert sorted(len(leaf) for leaf in leaves) == [4] * 8
    assert all(len({int(shuffled[i]) // 4 for i in leaf}) == 1 for leaf in leaves)  # one cluster per leaf


def test_every_micro_batch_of_a_step_is_one_group() -> None:
    vectors = clusters()
    order = grouped_permutation(vectors, batch_size=4, slots=2, rng=np.random.default_rng(0))
    assert sorted(order.tolist()) == list(range(32))
    for start in range(0, 32, 8):  # a step window of 2 slots; slot s takes positions start + s, start + s + 2 ...
        for slot in range(2):
            batch = order[start + slot : start + 8 : 2]
            assert len({int(i) // 4 for i in batch}) == 1
    random = np.random.default_rng(0).permutation(32)
    assert any(len({int(i) // 4 for i in random[s : s + 4]}) > 1 for s in range(0, 32, 4))
