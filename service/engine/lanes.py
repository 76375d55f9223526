"""Inference lanes: when several batches are ready, run them side by side, each on one core.

One onnxruntime session with N intra-op threads splits every op of a batch over N threads, and each op waits
for its slowest part; on a small shared CPU a thread that is preempted (by request handling, by a client on
the same machine) stalls the whole op. N single-threaded runs of one session, each on its own thread, share
nothing but the weights and never wait for each other: on 2 cores they embed 1.07-1.14x the sentences per
second of the two-threaded session on a quiet machine and 1.25-1.38x with other work on the cores, which a
server always has (``benchmarks/results/lanes.md``). A single batch, though, runs faster split over the
threads (one short text: 5.3 ms against 9.1 ms fp32), so the batcher keeps its multi-threaded session for
a batch that is alone and hands batches to the lanes only when several are ready or lanes are already busy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from xalign.runtime.onnx_encoder import OnnxEncoder


class Lanes:
    """``count`` threads running batches on ``encoder``, a single-threaded session (onnxruntime runs are
    thread-safe, so one session serves every lane); started on the event loop, stopped after ``drain``."""

    def __init__(self, encoder: OnnxEncoder, count: int) -> None:
        self.encoder = encoder
        self.count = count
        self._free: asyncio.Semaphore | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._executor: ThreadPoolExecutor | None = None

    @property
    def busy(self) -> int:
        """Batches running (or about to) on the lanes."""
        return len(self._tasks)

    @property
    def executor(self) -> ThreadPoolExecutor:
        """The lanes' threads (``start`` first)."""
        assert self._executor is not None, "lanes not started"
        return self._executor

    def start(self, name: str) -> None:
        """Create the threads and the free-lane count on the running loop (idempotent)."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=self.count, thread_name_prefix=f"lane-{name}")
            self._free = asyncio.Semaphore(self.count)

    async def launch(self, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Wait for a free lane, then start ``work`` (which runs its batch on ``executor``) without awaiting it."""
        assert self._free is not None, "lanes not started"
        await self._free.acquire()
        task = asyncio.get_running_loop().create_task(work())
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        assert self._free is not None
        self._free.release()

    async def drain(self) -> None:
        """Wait until every launched batch has finished."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def stop(self) -> None:
        """Let the threads go (after ``drain``); ``start`` makes new ones."""
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None
            self._free = None
