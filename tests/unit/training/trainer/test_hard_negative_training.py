"""``hard_negatives`` and ``group_batches`` in the trainer: mined once per epoch, in the batches, resumable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from resume_checks import interrupted_equals_uninterrupted, train_records
from trainer_recipes import make_recipe

from xalign.training.data.records import ParallelRow
from xalign.training.recipes.efficiency import HardNegatives
from xalign.training.trainer.build import build_run
from xalign.training.trainer.distributed import DistContext
from xalign.training.trainer.epoch_mining import MINING_DIR, EpochMining, pair_texts

# No margin: the random tiny model embeds every text nearly alike, so any margin would skip every candidate.
HARD = {"count": 2, "margin": 0.0, "pool": 0}


def test_each_batch_carries_its_mined_negatives(still_model: Path, tmp_path: Path) -> None:
    run = build_run(make_recipe(still_model, tmp_path / "run", hard_negatives=HARD), DistContext())
    window, _ = run.order.take(run.cursor)
    batch = run.collator([run.data.examples[i] for i in window.indices], window)
    assert batch.negatives is not None and batch.texts is not None and batch.pairs is not None
    assert batch.negatives.shape == (4, 2)
    mined = np.load(tmp_path / "run" / MINING_DIR / "epoch-000000.npz")["negatives"]
    targets = {int(t) for t in batch.pairs[:, 1]}
    assert int((batch.negatives >= 0).sum()) > 0
    for row, index in enumerate(window.indices):
        expected = [pair_texts(run.data.examples[j], "en")[1] for j in mined[index] if j >= 0]
        got = [int(t) for t in batch.negatives[row] if t >= 0]
        assert not targets & set(got)  # a negative is never a row's own translation
        tokens = run.text_tokenizer(expected)
        wanted = [tokens.ids[i][tokens.mask[i].bool()].tolist() for i in range(len(expected))]
        table = [batch.texts.ids[t][batch.texts.mask[t].bool()].tolist() for t in got]
        assert all(ids in wanted for ids in table)  # each one a mined negative (the English side here)


def test_grouped_order_follows_the_mined_permutation(still_model: Path, tmp_path: Path) -> None:
    run = build_run(make_recipe(still_model, tmp_path / "run", group_batches=True), DistContext())
    window, _ = run.order.take(run.cursor)
    permutation = np.load(tmp_path / "run" / MINING_DIR / "epoch-000000.npz")["permutation"]
    assert window.indices == permutation[:4].tolist()
    assert sorted(permutation.tolist()) == list(range(len(run.data.examples)))


def test_a_run_with_both_resumes_exactly_and_logs_the_ranking_loss(still_model: Path, tmp_path: Path) -> None:
    recipe = make_recipe(still_model, tmp_path / "whole", hard_negatives=HARD, group_batches=True, steps=4)
    interrupted_equals_uninterrupted(recipe, tmp_path)
    records = train_records(tmp_path / "whole")
    assert all(record["losses"]["translation_ranking"] > 0 for record in records)


class _CountingEncoder:
    """Each text's vector is one-hot on its first letter; records every text it was asked to embed."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def encode(self, texts: list[str]) -> np.ndarray:
        self.seen += texts
        out = np.zeros((len(texts), 26), dtype=np.float32)
        out[np.arange(len(texts)), [ord(t[0]) - ord("a") for t in texts]] = 1.0
        return out


def test_mining_embeds_each_distinct_text_once(tmp_path: Path) -> None:
    # English-centric rows: the English side repeats once per language, and is embedded once.
    rows = [ParallelRow({"de": "dz", "en": "hello"}), ParallelRow({"fr": "fy", "en": "hello"}),
            ParallelRow({"cs": "cx", "en": "world"})]  # fmt: skip
    encoder = _CountingEncoder()
    miner = EpochMining(rows, encoder, DistContext(), tmp_path, seed=0, pivot="en", batch_size=2, slots=1, hard=None)
    src, tgt = miner._embed_pairs([pair_texts(row, "en") for row in rows])
    assert sorted(encoder.seen) == ["cx", "dz", "fy", "hello", "world"]
    assert [int(v.argmax()) for v in src] == [ord("d") - 97, ord("f") - 97, ord("c") - 97]
    assert [int(v.argmax()) for v in tgt] == [ord("h") - 97, ord("h") - 97, ord("w") - 97]


def test_a_run_shorter_than_its_epoch_mines_only_the_examples_it_reaches(tmp_path: Path) -> None:
    # Row i: source "<letter>s", target "<letter>t" (each vector one-hot on the first letter, so a row's pair
    # matches and every other target is an equally near negative); the run reaches rows 1, 3 and 4 only.
    rows = [ParallelRow({"de": f"{letter}s", "en": f"{letter}t"}) for letter in "abcdef"]
    encoder = _CountingEncoder()
    reached = np.array([3, 1, 4], dtype=np.int64)
    miner = EpochMining(rows, encoder, DistContext(), tmp_path, seed=0, pivot="en", batch_size=2, slots=1,
                        hard=HardNegatives(count=2, margin=0.0, pool=0), visits=lambda _epoch: reached)  # fmt: skip
    negatives = [[int(j) for j in miner._mined(0)["negatives"][i] if j >= 0] for i in range(6)]
    assert sorted(encoder.seen) == ["bs", "bt", "ds", "dt", "es", "et"]  # only the reached rows' texts
    assert negatives[0] == negatives[2] == negatives[5] == []
    for row in (1, 3, 4):
        assert sorted(negatives[row]) == sorted({1, 3, 4} - {row})
