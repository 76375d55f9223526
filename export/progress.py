"""Progress of the long export steps (loading, exporting, quantising, parity, evaluation), in the log."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)


@contextmanager
def step(what: str) -> Iterator[None]:
    """Log the start and duration of a long step."""
    log.info("%s …", what)
    start = time.perf_counter()
    yield
    log.info("%s done in %.1f s", what, time.perf_counter() - start)
