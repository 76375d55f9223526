"""Progress of the mining job's stages: a tqdm bar with ETA on stderr, and one log line per finished stage.

The log line (logger ``xalign.mining``) gives the stage's wall time and its rate, e.g.
``embed src: 9,000 sentences in 41.2 s (218 sentences/s); 1,000 reused from an earlier run``; work reused
from an earlier run shows in the bar from the start and is left out of the rate.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tqdm import tqdm

LOG = logging.getLogger("xalign.mining")


class Stage:
    """One stage's bar and counters; :meth:`advance` as work is done."""

    def __init__(self, label: str, total: int, unit: str, *, shown: bool, reused: int = 0) -> None:
        self.label = label
        self.unit = unit
        self.done = 0
        self.reused = reused
        self._started = time.perf_counter()
        self._bar = tqdm(
            total=total, initial=reused, desc=label, unit=f" {unit}", disable=not shown, file=sys.stderr, leave=False
        )

    def advance(self, count: int) -> None:
        """Count ``count`` more units as done in this run."""
        self.done += count
        self._bar.update(count)

    def close(self, *, finished: bool) -> None:
        """Close the bar; when the stage finished, log its wall time and rate."""
        self._bar.close()
        if finished:
            LOG.info("%s", self.summary(time.perf_counter() - self._started))

    def summary(self, seconds: float) -> str:
        """``label: N units in T s (R units/s)``, and the reused count when there is one."""
        rate = self.done / seconds if seconds > 0 else 0.0
        line = f"{self.label}: {self.done:,} {self.unit} in {seconds:.1f} s ({rate:,.0f} {self.unit}/s)"
        return line + (f"; {self.reused:,} reused from an earlier run" if self.reused else "")


@contextmanager
def stage(label: str, total: int, unit: str = "sentences", *, shown: bool = True, reused: int = 0) -> Iterator[Stage]:
    """A :class:`Stage` of ``total`` units (``reused`` of them already done) for the ``with`` block."""
    current = Stage(label, total, unit, shown=shown, reused=reused)
    try:
        yield current
    except BaseException:
        current.close(finished=False)
        raise
    current.close(finished=True)
