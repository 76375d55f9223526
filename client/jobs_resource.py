"""``client.jobs`` of each client: the endpoints of ``client/jobs_api.py``; waiting and streaming, for each."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

from xalign.client import jobs_api
from xalign.client.async_runner import AsyncRunner
from xalign.client.bitext_api import Pair
from xalign.client.errors import JobWaitTimeoutError
from xalign.client.jobs_api import Job, Jobs, pair_of_line
from xalign.client.sync_runner import SyncRunner

Progress = Callable[[Job], object]


@dataclass
class Waiting:
    """One ``wait``: polls every ``poll`` seconds until the job finishes or ``deadline`` (monotonic) passes."""

    job_id: str
    poll: float
    deadline: float | None
    progress: Progress | None

    @classmethod
    def start(cls, job_id: str, poll: float, timeout: float | None, progress: Progress | None) -> Waiting:
        """A wait beginning now."""
        if poll <= 0:
            raise ValueError(f"poll must be > 0 seconds, got {poll}")
        deadline = None if timeout is None else time.monotonic() + timeout
        return cls(job_id, poll, deadline, progress)

    def next_poll(self, job: Job) -> float | None:
        """Seconds to the next poll, ``None`` once ``job`` has finished; raise past the deadline."""
        if self.progress is not None:
            self.progress(job)
        if job.finished:
            return None
        if self.deadline is None:
            return self.poll
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise JobWaitTimeoutError(f"mining job {self.job_id} is still {job.state} (progress: {_stages(job)})")
        return min(self.poll, left)


def _stages(job: Job) -> str:
    return ", ".join(f"{p.stage} {p.done}/{p.total}" for p in job.progress) or "none yet"


class SyncJobs(Jobs[SyncRunner]):
    """``Client.jobs``."""

    def wait(
        self, job_id: str, *, poll: float = 1.0, timeout: float | None = None, progress: Progress | None = None
    ) -> Job:
        """Poll until the job has finished and return it (check ``state``); ``progress(job)`` after every poll.

        Raises :class:`JobWaitTimeoutError` after ``timeout`` seconds (the job keeps running).

        >>> job = client.jobs.wait(job.id, poll=2, timeout=3600, progress=lambda j: print(j.progress))
        """
        waiting = Waiting.start(job_id, poll, timeout, progress)
        while (delay := waiting.next_poll(job := self.get(job_id))) is not None:
            time.sleep(delay)
        return job

    def stream_pairs(self, job_id: str, *, offset: int = 0, limit: int | None = None) -> Iterator[Pair]:
        """A succeeded job's pairs, best first, streamed as JSON lines (all of them without ``limit``).

        >>> for pair in client.jobs.stream_pairs(job.id):
        ...     print(pair.score, pair.src_text, pair.tgt_text)
        """
        for line in self._runner.lines(jobs_api.stream_pairs_call(job_id, offset, limit)):
            yield pair_of_line(line)


class AsyncJobs(Jobs[AsyncRunner]):
    """``AsyncClient.jobs``."""

    async def wait(
        self, job_id: str, *, poll: float = 1.0, timeout: float | None = None, progress: Progress | None = None
    ) -> Job:
        """Poll until the job has finished and return it (check ``state``); ``progress(job)`` after every poll.

        Raises :class:`JobWaitTimeoutError` after ``timeout`` seconds (the job keeps running).

        >>> job = await client.jobs.wait(job.id, poll=2, timeout=3600)
        """
        waiting = Waiting.start(job_id, poll, timeout, progress)
        while (delay := waiting.next_poll(job := await self.get(job_id))) is not None:
            await asyncio.sleep(delay)
        return job

    async def stream_pairs(self, job_id: str, *, offset: int = 0, limit: int | None = None) -> AsyncIterator[Pair]:
        """A succeeded job's pairs, best first, streamed as JSON lines (all of them without ``limit``).

        >>> async for pair in client.jobs.stream_pairs(job.id):
        ...     print(pair.score, pair.src_text, pair.tgt_text)
        """
        async for line in self._runner.lines(jobs_api.stream_pairs_call(job_id, offset, limit)):
            yield pair_of_line(line)
