"""Per-epoch mining with the model being trained: hard negatives and a grouped data order.

At the first step of every epoch the encoder embeds each example's pair, source and target (a row's first
non-pivot text and its pivot text, or its first two languages), in eval mode. From the embeddings:

* ``hard_negatives``: each example's nearest non-translations (``training/data/hard_negatives.py``), searched
  within groups of about ``pool`` near neighbours; the ``Collator`` adds their texts to the batch as extra
  ranking candidates;
* ``group_batches``: the epoch's order with micro-batches of near neighbours (``training/data/grouped_batches.py``),
  which ``DataOrder`` takes instead of its random permutation.

A run that ends before its epoch does (a few hundred steps over a large corpus) mines hard negatives only among
the examples it will reach in that epoch (``visits``; the random order of ``order.py`` fixes them in advance):
its negatives come from those examples' translations, and mining costs the run's share of the epoch, not the
whole corpus. Grouped batches order the whole epoch, so with ``group_batches`` every example is mined.

Rank 0 mines and saves ``<output>/mining/epoch-000003.npz``; the other processes wait and read it, and a resumed
run reads the file of its epoch instead of mining again with a later model, so it continues exactly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from xalign.training.data.grouped_batches import grouped_permutation, split_tree
from xalign.training.data.hard_negatives import mine_hard_negatives
from xalign.training.data.records import ParallelRow
from xalign.training.recipes.efficiency import HardNegatives
from xalign.training.trainer.dev_eval import LiveEncoder
from xalign.training.trainer.distributed import DistContext, barrier

log = logging.getLogger(__name__)
IntArray = npt.NDArray[np.int64]
MINING_DIR = "mining"


def pair_texts(row: ParallelRow, pivot: str) -> tuple[str, str]:
    """The (source, target) texts a row is mined by: a non-pivot text and the pivot's, else its first two."""
    if pivot in row.texts and len(row.langs) > 1:
        source = next(lang for lang in row.langs if lang != pivot)
        return row.texts[source], row.texts[pivot]
    return row.texts[row.langs[0]], row.texts[row.langs[1]]


class EpochMining:
    """Mines each epoch once (see the module docstring); ``permutation`` and ``negatives`` read the result."""

    def __init__(
        self,
        examples: Sequence[ParallelRow],
        encoder: LiveEncoder,
        context: DistContext,
        folder: Path,
        *,
        seed: int,
        pivot: str,
        batch_size: int,
        slots: int,
        hard: HardNegatives | None,
        visits: Callable[[int], IntArray] | None = None,
    ) -> None:
        self.examples, self.encoder, self.context, self.folder = examples, encoder, context, Path(folder)
        self.seed, self.pivot, self.batch_size, self.slots, self.hard = seed, pivot, batch_size, slots, hard
        self.visits = visits  # epoch -> the example indices the run takes in it; None: all (grouped order)
        self._epoch: tuple[int, dict[str, IntArray]] | None = None

    def permutation(self, epoch: int) -> IntArray:
        """The grouped order of ``epoch`` (``DataOrder``'s ``permute``)."""
        return self._mined(epoch)["permutation"]

    def negatives(self, epoch: int, index: int) -> list[ParallelRow]:
        """The rows mined as hard negatives of example ``index`` in ``epoch`` (the ``Collator``'s source)."""
        return [self.examples[int(j)] for j in self._mined(epoch)["negatives"][index] if j >= 0]

    def _mined(self, epoch: int) -> dict[str, IntArray]:
        if self._epoch is None or self._epoch[0] != epoch:
            path = self.folder / MINING_DIR / f"epoch-{epoch:06d}.npz"
            if self.context.is_main and not path.is_file():
                _save(path, self._mine(epoch))
            barrier(self.context)
            with np.load(path) as saved:
                self._epoch = (epoch, {name: saved[name] for name in saved.files})
        return self._epoch[1]

    def _mine(self, epoch: int) -> dict[str, IntArray]:
        if self.hard is None:
            return {"permutation": self._grouped(epoch)}
        visited = np.arange(len(self.examples), dtype=np.int64) if self.visits is None else self.visits(epoch)
        pairs = [pair_texts(self.examples[int(i)], self.pivot) for i in visited]
        src, tgt = self._embed_pairs(pairs)
        rng = np.random.default_rng([self.seed, epoch, 7])
        mined: dict[str, IntArray] = {}
        if self.visits is None:  # drawn before the pools, as always, so a whole epoch mines as it did
            mined["permutation"] = grouped_permutation(tgt, self.batch_size, self.slots, rng)
        pools = split_tree(tgt, self.hard.pool, rng) if self.hard.pool else None
        _, duplicates = np.unique([t for _, t in pairs], return_inverse=True)
        found = mine_hard_negatives(
            src, tgt, duplicates.astype(np.int64), count=self.hard.count, margin=self.hard.margin, pools=pools
        )  # (visited, count): positions in ``visited``, -1 where none
        negatives = np.full((len(self.examples), self.hard.count), -1, dtype=np.int64)
        negatives[visited] = np.where(found >= 0, visited[np.maximum(found, 0)], -1)
        mined["negatives"] = negatives
        log.info("epoch %d: mined hard negatives of %d of %d examples", epoch, len(visited), len(self.examples))
        return mined

    def _grouped(self, epoch: int) -> IntArray:
        """The grouped order of ``epoch``, from every example's target vector."""
        _, tgt = self._embed_pairs([pair_texts(row, self.pivot) for row in self.examples])
        log.info("epoch %d: grouped %d examples", epoch, len(self.examples))
        return grouped_permutation(tgt, self.batch_size, self.slots, np.random.default_rng([self.seed, epoch, 7]))

    def _embed_pairs(self, pairs: Sequence[tuple[str, str]]) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """Source and target vectors, (N, H) unit rows each, embedding every distinct text once: in
        English-centric data each English sentence is the target of every language's pair (5x here)."""
        distinct = list(dict.fromkeys(text for pair in pairs for text in pair))
        row = {text: i for i, text in enumerate(distinct)}
        vectors = self.encoder.encode(distinct)  # (distinct, H)
        return vectors[[row[s] for s, _ in pairs]], vectors[[row[t] for _, t in pairs]]


def _save(path: Path, arrays: dict[str, IntArray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(f".{path.name}.tmp")
    with staged.open("wb") as handle:
        np.savez(handle, **arrays)  # type: ignore[arg-type]
    staged.replace(path)
