"""Cutting a length-sorted window of texts into inference batches at the least estimated cost.

A batch is padded to its longest text, so a fixed number of rows per batch pays for every short text
that shares a batch with a long one. A window of 8 requests of 32 Tatoeba sentences, cut 32 rows at a
time, padded 17% more tokens than the same texts sorted all at once (the bare session's reference).
Cuts placed where lengths jump waste less, but every batch also costs a fixed overhead (a session run,
its kernels' setup), so many tiny batches are no better.

The cost of a batch of ``rows`` texts padded to ``length`` tokens is modelled as
``overhead_tokens + rows * length * (1 + length / attention_tokens)``, in units of one token through the
encoder's linear layers: the second term is the token-wise work, the third the attention's, which grows
with length. ``plan_cuts`` finds the partition of the sorted window into contiguous batches with the least
summed cost (dynamic programming over the last cut, each batch within ``batch_size`` rows and
``max_batch_tokens`` padded tokens). ``benchmarks/batch_cost.py`` measures the two constants of a model
on a machine; the defaults are e5-small's on 2 CPU cores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class BatchCost:
    """The cost model's constants, in token-equivalents (see the module docstring)."""

    overhead_tokens: float = 64.0
    attention_tokens: float = 256.0

    def of(self, rows: int, length: int) -> float:
        """Estimated cost of one batch of ``rows`` texts padded to ``length`` tokens."""
        return self.overhead_tokens + rows * length * (1.0 + length / self.attention_tokens)


def fixed_cuts(count: int, batch_size: int) -> list[int]:
    """End offsets of batches of ``batch_size`` rows (the last one shorter): the plain cut."""
    return [*range(batch_size, count, batch_size), count] if count else []


def plan_cuts(lengths: Sequence[int], batch_size: int, max_batch_tokens: int, cost: BatchCost) -> list[int]:
    """End offsets of the cheapest batches of ascending ``lengths``: batch k is ``[cuts[k-1], cuts[k])``.

    Each batch holds at most ``batch_size`` rows and ``rows * longest <= max_batch_tokens`` padded tokens
    (a single text longer than the budget still forms a batch of its own).
    """
    count = len(lengths)
    best = [0.0] + [float("inf")] * count  # best[j]: least cost of the first j texts
    start = [0] * (count + 1)  # start[j]: where the last batch of that best plan begins
    for end in range(1, count + 1):
        longest = lengths[end - 1]  # ascending: the batch's last text is its longest
        most = max(1, min(batch_size, max_batch_tokens // max(longest, 1)))
        # cost.of(end - first, longest) is linear in the rows: overhead + (end - first) * per_row, so the best
        # first cut minimises best[first] - first * per_row (32 candidates, no call per candidate).
        per_row = cost.of(1, longest) - cost.overhead_tokens
        first = min(range(max(0, end - most), end), key=lambda f: best[f] - f * per_row)
        best[end] = best[first] + cost.of(end - first, longest)
        start[end] = first
    return _ends(start, count)


def _ends(start: Sequence[int], count: int) -> list[int]:
    """Walk the plan back from the last text: the batches' end offsets, first batch first."""
    ends: list[int] = []
    end = count
    while end > 0:
        ends.append(end)
        end = start[end]
    return ends[::-1]
