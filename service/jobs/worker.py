"""The bounded runner of mining jobs: a queue, ``max_concurrent_jobs`` runners, and resuming after a restart.

Beside live traffic. A job runs ``run_job`` (``runtime/mining/job.py``) on a worker thread, so its reading,
margin scoring and exact kNN (in blocks of ``job_knn_chunk_rows`` rows) never hold the event loop. It embeds
through the served version's shared batcher (``service/engine/batcher.py``), ``job_embed_chunk`` texts per
submit, one submit at a time: interactive requests queue beside at most one small chunk of a job and are
batched with it, so they wait for at most a few batches, never for a shard. A chunk the batcher refuses
(its queue is full of live requests) is retried after the ``Retry-After`` it gave: under load the job
yields, which makes it the low-priority client without a second queue.

Never lost. Each state change is written to ``job.json`` (progress at most once a second). At start, jobs
found queued or running are queued again and resume from their work folder (every finished shard and
neighbour file is reused); one whose model version is no longer loaded fails with that reason. A stop
(shutdown) halts a running job at its next chunk and leaves it queued for the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from xalign.modelstore import StoreError
from xalign.modelstore.refs import parse_ref
from xalign.runtime.errors import EngineError
from xalign.runtime.margin import MiningConfig
from xalign.runtime.mining.corpus import CorpusError, Side
from xalign.runtime.mining.job import JobCancelled, JobHooks, JobReport, JobSpec, run_job
from xalign.runtime.mining.neighbour_files import SearchSettings
from xalign.runtime.mining.scoring import PairArrays
from xalign.runtime.mining.shards import ReuseError
from xalign.service.errors import NotFoundError, NotReadyError, OverloadedError, ServiceError
from xalign.service.jobs.pairs import PAIRS, write_pairs_jsonl
from xalign.service.jobs.schema import FINISHED, JobCounts, JobRecord, JobState, StageProgress
from xalign.service.jobs.store import JobStore
from xalign.service.loaded_model import LoadedModel
from xalign.service.registry import ModelRegistry
from xalign.service.settings import Settings

log = logging.getLogger("xalign.service")

# Seconds between two writes of a running job's progress to job.json.
_SAVE_EVERY_S = 1.0
# What a job may fail of, reported as its reason; anything else is logged and reported by type only.
_JOB_ERRORS = (CorpusError, ReuseError, StoreError, EngineError, ServiceError, ValueError)


def now_utc() -> datetime:
    """Now, in UTC (the timestamps of job records)."""
    return datetime.now(UTC)


class JobRunner:
    """Queued and running jobs of this service; the records of all jobs, by id."""

    def __init__(self, settings: Settings, registry: ModelRegistry, store: JobStore) -> None:
        self.settings = settings
        self.registry = registry
        self.store = store
        self.records: dict[str, JobRecord] = {}
        self._queue: deque[str] = deque()
        self._wake = asyncio.Event()
        self._cancel: dict[str, threading.Event] = {}
        self._stopping = threading.Event()
        self._runners: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    async def open(cls, settings: Settings, registry: ModelRegistry) -> JobRunner:
        """Read every job under ``<data_dir>/jobs``, queue again those not finished, start the runners."""
        runner = cls(settings, registry, JobStore(settings.data_dir / "jobs"))
        for record in await asyncio.to_thread(runner.store.load_all):
            runner.records[record.id] = record
            if record.state not in FINISHED:
                log.info("job %s was %s at the last stop: queued again", record.id, record.state)
                runner.store.update(record, lambda r: setattr(r, "state", "queued"))
                runner._queue.append(record.id)
        runner.start()
        return runner

    def start(self) -> None:
        """Start ``max_concurrent_jobs`` runners on the running loop."""
        self._loop = asyncio.get_running_loop()
        for number in range(self.settings.max_concurrent_jobs):
            self._runners.append(self._loop.create_task(self._run_forever(), name=f"mining job runner {number}"))

    async def close(self) -> None:
        """Stop: running jobs halt at their next chunk and stay queued on disk for the next start."""
        self._stopping.set()
        self._wake.set()
        await asyncio.gather(*self._runners, return_exceptions=True)

    # --- what routes ask -------------------------------------------------------------------------------

    def check_room(self) -> None:
        """429 with Retry-After when ``max_queued_jobs`` jobs are waiting already."""
        if len(self._queue) >= self.settings.max_queued_jobs:
            raise OverloadedError(
                f"{len(self._queue)} mining jobs are queued already (XALIGN_MAX_QUEUED_JOBS); retry later",
                60,
                code="job_queue_full",
            )

    def enqueue(self, record: JobRecord) -> None:
        """Take a new job (its folder is complete) and queue it."""
        self.records[record.id] = record
        self._queue.append(record.id)
        self._wake.set()

    def get(self, job_id: str) -> JobRecord:
        """The record of a job, or 404."""
        record = self.records.get(job_id)
        if record is None:
            raise NotFoundError(f"mining job {job_id!r} does not exist", "job_id", code="job_not_found")
        return record

    def snapshot(self, record: JobRecord) -> JobRecord:
        """A copy of ``record`` taken under the lock (a running job's thread updates its progress)."""
        with self.store.lock:
            return record.model_copy(deep=True)

    def cancel(self, job_id: str) -> JobRecord:
        """Cancel a queued job now, or ask a running one to stop at its next task boundary."""
        record = self.get(job_id)
        if record.state == "queued":
            with contextlib.suppress(ValueError):
                self._queue.remove(job_id)
            self.store.update(record, _finish("cancelled", None))
        elif record.state == "running":
            self.store.update(record, lambda r: setattr(r, "cancel_requested", True))
            self._cancel.setdefault(job_id, threading.Event()).set()
        return record

    def delete(self, job_id: str) -> JobRecord:
        """Remove a finished job and its results."""
        record = self.records.pop(job_id)
        self.store.delete(job_id)
        return record

    # --- running ---------------------------------------------------------------------------------------

    async def _run_forever(self) -> None:
        while not self._stopping.is_set():
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            job_id = self._queue.popleft()
            try:
                await self._run(self.records[job_id])
            except Exception:  # one broken job must not end the runner
                log.exception("mining job %s: the runner failed", job_id)

    async def _run(self, record: JobRecord) -> None:
        loaded = self._model_of(record)
        if loaded is None:
            return
        cancel = self._cancel.setdefault(record.id, threading.Event())
        self.store.update(record, _started)
        hooks = _Hooks(self, record, loaded, cancel)
        try:
            report = await asyncio.to_thread(run_job, self._spec(record), None, hooks.job_hooks())
        except JobCancelled:
            self._stopped(record, cancel)
        except _JOB_ERRORS as exc:
            log.warning("mining job %s failed: %s", record.id, exc)
            self.store.update(record, _finish("failed", str(exc)))
        except Exception as exc:
            log.exception("mining job %s failed", record.id)
            self.store.update(record, _finish("failed", f"internal error ({type(exc).__name__}); see the server log"))
        else:
            self.store.update(record, _succeeded(report))
            log.info("mining job %s: %d pairs", record.id, report.pairs)
        finally:
            self._cancel.pop(record.id, None)

    def _stopped(self, record: JobRecord, cancel: threading.Event) -> None:
        if cancel.is_set():
            self.store.update(record, _finish("cancelled", None))
        else:  # the service is stopping: the job resumes at the next start
            self.store.update(record, lambda r: setattr(r, "state", "queued"))

    def _model_of(self, record: JobRecord) -> LoadedModel | None:
        """The version the job was submitted with, if still loaded; else the job fails naming it."""
        ref = parse_ref(record.model)
        loaded = self.registry.get_version(ref.name, ref.version or 0)
        if loaded is None:
            current = self.registry.current(ref.name)
            serving = f"serving {current.id}" if current is not None else f"{ref.name} is not served"
            reason = f"model {record.model} is no longer loaded ({serving}); submit the job again"
            self.store.update(record, _finish("failed", reason))
        return loaded

    def _spec(self, record: JobRecord) -> JobSpec:
        folder = self.store.folder(record.id)
        return JobSpec(
            store=self.settings.store,
            model=record.model,
            src=tuple(Path(p) for p in record.inputs["src"]),
            tgt=tuple(Path(p) for p in record.inputs["tgt"]),
            work=folder / "work",
            out=folder / "pairs.tsv",
            variant=record.variant,
            config=MiningConfig(record.margin, record.k, record.retrieval, record.threshold),
            shard_size=self.settings.job_shard_size,
            search=SearchSettings("exact", self.settings.job_knn_chunk_rows),
            progress=False,
        )


class _Hooks:
    """The hooks of one running job (called on its thread): cancellation, progress, embedding, pairs."""

    def __init__(self, runner: JobRunner, record: JobRecord, loaded: LoadedModel, cancel: threading.Event) -> None:
        self.runner, self.record, self.loaded, self.cancel = runner, record, loaded, cancel
        self._saved = 0.0

    def job_hooks(self) -> JobHooks:
        return JobHooks(cancelled=self.cancelled, progress=self.progress, embed=self.embed, pairs=self.pairs)

    def cancelled(self) -> bool:
        return self.cancel.is_set() or self.runner._stopping.is_set()

    def progress(self, stage: str, done: int, total: int) -> None:
        store = self.runner.store
        with store.lock:
            stages = {p.stage: p for p in self.record.progress}
            stages[stage] = StageProgress(stage=stage, done=done, total=total)
            self.record.progress = list(stages.values())
            if time.monotonic() - self._saved >= _SAVE_EVERY_S or done >= total:
                store.save(self.record)
                self._saved = time.monotonic()

    def embed(self, texts: list[str]) -> npt.NDArray[np.float32]:
        """(texts,) → (texts, dim): through the shared batcher, a small chunk at a time."""
        chunk = self.runner.settings.job_embed_chunk
        parts = []
        for start in range(0, len(texts), chunk):
            if self.cancelled():
                raise JobCancelled("the job was cancelled")
            parts.append(self._submit(texts[start : start + chunk]))
        return np.concatenate(parts) if parts else np.zeros((0, self.loaded.encoder.dim), np.float32)

    def _submit(self, texts: list[str]) -> npt.NDArray[np.float32]:
        loop = self.runner._loop
        assert loop is not None
        while True:
            future = asyncio.run_coroutine_threadsafe(self.loaded.embed(texts, None), loop)
            try:
                vectors, _ = future.result()
                return np.asarray(vectors, np.float32)
            except OverloadedError as exc:  # live requests fill the queue: yield to them, then retry
                if self.runner._stopping.wait(min(exc.retry_after, 5)) or self.cancel.is_set():
                    raise JobCancelled("the job was cancelled") from None
            except NotReadyError:
                if self.cancelled():
                    raise JobCancelled("the service is stopping") from None
                raise

    def pairs(self, pairs: PairArrays, src: Side, tgt: Side) -> None:
        write_pairs_jsonl(self.runner.store.folder(self.record.id) / PAIRS, pairs, src, tgt)


def _started(record: JobRecord) -> None:
    record.state = "running"
    record.started_at = record.started_at or now_utc()


def _finish(state: JobState, error: str | None) -> Callable[[JobRecord], None]:
    def change(record: JobRecord) -> None:
        record.state = state
        record.error = error
        record.finished_at = now_utc()

    return change


def _succeeded(report: JobReport) -> Callable[[JobRecord], None]:
    counts = JobCounts(
        src_sentences=report.src_sentences,
        src_unique=report.src_unique,
        tgt_sentences=report.tgt_sentences,
        tgt_unique=report.tgt_unique,
        pairs=report.pairs,
    )

    def change(record: JobRecord) -> None:
        _finish("succeeded", None)(record)
        record.counts = counts

    return change
