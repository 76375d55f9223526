"""Dynamic batching: requests' texts are queued per model version and run together in padded batches.

Policy. A worker task per model version waits for the first queued text, then, when other requests
are open, at most ``max_wait_ms`` (counted from that text's arrival, so a busy worker adds no wait) for
the queue to fill one batch. It takes a window of the oldest texts (a few batches' worth, so newcomers
wait a bounded time and long texts never starve), sorts it by token length, and cuts it into the batches
of least estimated cost (``service.engine.batch_plan``), each of at most ``batch_size`` rows and
``max_batch_tokens`` padded tokens (rows x longest). Inference runs off the event loop (onnxruntime
releases the GIL), so the loop stays free: a batch that is alone runs on the model's multi-threaded session,
on one inference thread; when a window holds several batches, or lanes are busy, they run side by side on
the single-threaded lanes (``service.engine.lanes``). Only a lone request (no other one open) with a batch
of at most ``inline_max_tokens`` padded tokens runs on the loop's own thread, which saves two thread
wake-ups of its latency. A request finishes when its last text has been embedded.

Admission (``service.engine.admission``): a request's tokens are reserved whole before it is queued,
or it is refused whole (429 with Retry-After; 413 over the per-request maximum). A request whose
caller is cancelled (its client went away) leaves the queue at once and gives its reservation back;
one none of whose texts could start within ``queue_timeout_s`` is dropped with 503.

Retiring. A released (retired) version's worker ends once idle, but requests that still hold the
version are served: a submit restarts the worker. Only ``close`` (shutdown) refuses new work.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from xalign.runtime.onnx_encoder import OnnxEncoder, Vectors
from xalign.service.engine.admission import Admission, Bounds
from xalign.service.engine.batch_plan import BatchCost, plan_cuts
from xalign.service.engine.lanes import Lanes
from xalign.service.errors import INPUT_TOO_LONG, NotReadyError, PayloadTooLargeError, QueueTimeoutError
from xalign.service.metrics import Metrics
from xalign.service.settings import Settings

# Texts are tokenised on the event loop below this many characters per request (microseconds of work);
# above it, on a worker thread, so one huge request cannot stall every other one.
_INLINE_TOKENIZE_CHARS = 4096
# A window holds this many batches' worth of the oldest texts: enough to sort by length usefully.
# Measured on the protocol texts (8 clients x 32 sentences): padded tokens +30% over a global sort with
# 4 batches, +17% with 8; the price is that a newcomer may wait behind 8 batches instead of 4.
_WINDOW_BATCHES = 8

T = TypeVar("T")


async def tokenize_off_loop(texts: Sequence[str], work: Callable[[], T]) -> T:
    """Run ``work``, which tokenises ``texts``, on the event loop when they are short, else on a worker thread."""
    if sum(len(t) for t in texts) <= _INLINE_TOKENIZE_CHARS:
        return work()
    return await asyncio.to_thread(work)


@dataclass(frozen=True)
class Tokenizing:
    """How a request's texts are tokenised: a prefix per text (None: the model's own), and whether a text past
    the model's token limit is cut (``truncate``) or refuses the request (413)."""

    prefixes: Sequence[str] | None = None
    truncate: bool = True


PLAIN = Tokenizing()


@dataclass(frozen=True)
class BatchPolicy:
    """How texts are grouped (rows and padded tokens per batch, longest wait), the start deadline, queue bounds.

    Built from the settings (``service/settings.py``), which define every value and default.
    """

    batch_size: int
    max_batch_tokens: int
    max_wait_s: float
    queue_timeout_s: float  # 0: no deadline
    inline_max_tokens: int  # a lone request's batch up to this many padded tokens runs on the loop; 0: never
    bounds: Bounds  # what admission reserves against
    cost: BatchCost = field(default_factory=BatchCost)  # where the sorted window is cut into batches

    @classmethod
    def from_settings(cls, settings: Settings) -> BatchPolicy:
        """The policy the service settings ask for."""
        return cls(
            batch_size=settings.batch_size,
            max_batch_tokens=settings.max_batch_tokens,
            max_wait_s=settings.max_wait_ms / 1000,
            queue_timeout_s=settings.queue_timeout_s,
            inline_max_tokens=settings.inline_max_tokens,
            bounds=Bounds.from_settings(settings),
            cost=BatchCost(settings.batch_overhead_tokens, settings.batch_attention_tokens),
        )


@dataclass(eq=False)
class _Job:
    """One ``submit`` call: its output rows fill in as its texts' batches finish."""

    out: Vectors  # (n, dim)
    future: asyncio.Future[Vectors]
    remaining: int
    queued_texts: int  # of its texts, those still in the queue, and their tokens (its reservation)
    queued_tokens: int
    started: bool = False  # one of its texts was taken for inference
    drop_reason: str = "cancelled"


@dataclass(eq=False)
class _Item:
    """One queued text: the job it belongs to, its row there, its token ids."""

    job: _Job
    row: int
    ids: list[int]
    arrived: float = field(default_factory=time.monotonic)


class Batcher:
    """The queue and worker of one model version; start is lazy, ``close`` drains then stops.

    ``lanes``: where several ready batches run side by side (None: every batch on ``encoder``, one at a time).
    """

    def __init__(
        self,
        encoder: OnnxEncoder,
        policy: BatchPolicy,
        metrics: Metrics | None = None,
        label: str = "",
        lanes: Lanes | None = None,
    ) -> None:
        self.encoder = encoder
        self.lanes = lanes
        self.policy = policy
        self.label = label or encoder.name
        self.admission = Admission(policy.bounds, self.label, metrics)
        self._metrics = metrics
        self._pending: deque[_Item] = deque()
        self._arrived = asyncio.Event()
        self._active = 0  # submit calls between entry and enqueue (tokenising off the loop)
        self._open_jobs = 0  # submitted requests not finished yet (queued or in inference)
        self._closing = False  # shut down: refuse new work
        self._retired = False  # released: end the worker when idle, restart it for late holders
        self._worker: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._executor: ThreadPoolExecutor | None = None
        self.embedded = 0  # texts embedded, and texts dropped unembedded (cancelled or past their deadline)
        self.dropped = 0

    @property
    def queued(self) -> int:
        """Texts waiting for inference."""
        return len(self._pending)

    @property
    def running(self) -> bool:
        """Whether the worker task exists (a retired version's ends once idle)."""
        return self._worker is not None

    async def submit(
        self, texts: Sequence[str], param: str | None = "input", how: Tokenizing = PLAIN
    ) -> tuple[Vectors, int]:
        """Embed ``texts`` with whatever else is queued: (n,) → ((n, dim) vectors, embedded token count).

        ``how.prefixes`` gives each text its own prefix (None: the model's); texts with different prefixes share
        batches. Raises ``OverloadedError`` (429) when the queue has no room for the whole request,
        ``PayloadTooLargeError`` (413, naming ``param``) over the per-request token maximum or, with
        ``how.truncate`` false, for a text longer than the model's token limit, and ``QueueTimeoutError`` (503)
        when none of its texts could start within ``queue_timeout_s``.
        """
        if not texts:
            return np.zeros((0, self.encoder.dim), dtype=np.float32), 0
        if self._closing:
            raise NotReadyError(f"{self.label} is shutting down", code="shutting_down")
        self.admission.precheck(len(texts))
        self._active += 1
        try:
            ids = await self._tokenize(texts, how, param)
            tokens = sum(len(x) for x in ids)
            self._reserve(len(ids), tokens, param)
            # No await between the reservation and the enqueue: the bound holds across concurrent requests.
            job = self._enqueue(ids, tokens)
        finally:
            self._active -= 1
            self._arrived.set()
        try:
            await self._await_start(job)
            return await job.future, tokens
        except BaseException:
            self._drop(job, "cancelled")  # the caller went away: its queued texts leave with it
            raise

    def _reserve(self, texts: int, tokens: int, param: str | None) -> None:
        try:
            self.admission.reserve(texts, tokens)
        except PayloadTooLargeError as exc:
            exc.param = param
            raise

    async def _await_start(self, job: _Job) -> None:
        """Return once the job has started (or finished); drop it with 503 if it has not by the deadline."""
        timeout = self.policy.queue_timeout_s
        if timeout <= 0:
            return
        done, _ = await asyncio.wait({job.future}, timeout=timeout)
        if not done and not job.started:
            self._drop(job, "deadline")
            raise QueueTimeoutError(
                f"{self.label}: the request could not start within {timeout:g} s; retry later",
                self.admission.retry_after(),
            )

    def _drop(self, job: _Job, reason: str) -> None:
        """Cancel a job that has not finished; its done callback takes its texts out of the queue."""
        if not job.future.done():
            job.drop_reason = reason
            job.future.cancel()

    async def _tokenize(self, texts: Sequence[str], how: Tokenizing, param: str | None) -> list[list[int]]:
        return await tokenize_off_loop(texts, functools.partial(self._encode, texts, how, param))

    def _encode(self, texts: Sequence[str], how: Tokenizing, param: str | None) -> list[list[int]]:
        """Each text's ids, tokenised once; with ``truncate`` false, 413 for the first text the limit would cut."""
        ids, counts = self.encoder.tokenizer.encode_counted(texts, how.prefixes)
        if not how.truncate:
            limit = self.encoder.tokenizer.max_length
            row = next((i for i, count in enumerate(counts) if count > limit), None)
            if row is not None:
                shown = f"{param}[{row}]" if param else f"text {row}"
                raise PayloadTooLargeError(
                    f"{shown} has {counts[row]} tokens, more than the {limit} {self.label} takes "
                    f"(truncate: true embeds its first {limit})",
                    shown if param else None,
                    code=INPUT_TOO_LONG,
                )
        return ids

    def _enqueue(self, ids: list[list[int]], tokens: int) -> _Job:
        self._ensure_worker()
        loop = asyncio.get_running_loop()
        out = np.zeros((len(ids), self.encoder.dim), dtype=np.float32)
        job = _Job(out, loop.create_future(), len(ids), len(ids), tokens)
        self._open_jobs += 1
        job.future.add_done_callback(functools.partial(self._job_done, job))
        self._pending.extend(_Item(job, row, seq) for row, seq in enumerate(ids))
        return job

    def _job_done(self, job: _Job, _: asyncio.Future[Vectors]) -> None:
        """A job ended: if texts of it are still queued (cancelled, expired), remove them and free their room."""
        self._open_jobs -= 1
        if job.queued_texts == 0:
            return
        self._pending = deque(item for item in self._pending if item.job is not job)
        self._count_dropped(job.queued_texts, job.drop_reason)
        self.admission.release(job.queued_texts, job.queued_tokens)
        job.queued_texts = job.queued_tokens = 0

    def _count_dropped(self, texts: int, reason: str) -> None:
        self.dropped += texts
        if self._metrics is not None:
            self._metrics.dropped.labels(self.label, reason).inc(texts)

    def _ensure_worker(self) -> None:
        if self._worker is None:
            self._loop = asyncio.get_running_loop()
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"infer-{self.encoder.name}")
            self._worker = self._loop.create_task(self._work(), name=f"batcher {self.encoder.name}")
            if self.lanes is not None:
                self.lanes.start(self.encoder.name)

    async def _work(self) -> None:
        """Form and run batches until closing or retired, and nothing is queued or on its way."""
        while True:
            if not self._pending:
                if (self._closing or self._retired) and self._active == 0:
                    if self.lanes is not None and self.lanes.busy:
                        await self.lanes.drain()
                        continue  # new work may have come in meanwhile
                    break
                self._arrived.clear()
                await self._arrived.wait()
                continue
            await self._gather()
            await self._dispatch(self._cut(self._take_window()))
        # No await from the check above to here: a submit cannot slip in between and find no worker.
        self._worker = None
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None
        if self.lanes is not None:
            self.lanes.stop()

    async def _dispatch(self, batches: list[list[_Item]]) -> None:
        """Run a window's batches: a batch alone (lanes idle) on the multi-threaded session, awaited; several,
        or any while lanes are busy, on the lanes, started as lanes come free (the next window may then start
        while this one's last batches run)."""
        lanes = self.lanes
        for batch in batches:
            if lanes is None or (len(batches) == 1 and not lanes.busy):
                await self._run(batch)
            else:
                await lanes.launch(functools.partial(self._run, batch, lanes))

    async def _gather(self) -> None:
        """Wait until one batch is full or the oldest text has waited ``max_wait_s``.

        A lone request (no other one queued or running) does not wait: nobody is there to batch with,
        and a single client would pay the whole wait on every call.
        """
        if self._open_jobs <= 1:
            return
        deadline = self._pending[0].arrived + self.policy.max_wait_s
        # Bounded: each pass either fills a batch, passes the deadline, or waits for an arrival.
        while self._pending and not self._batch_full() and not self._closing:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self._arrived.wait()

    def _batch_full(self) -> bool:
        if len(self._pending) >= self.policy.batch_size:
            return True
        longest = max(len(item.ids) for item in self._pending)
        return len(self._pending) * longest >= self.policy.max_batch_tokens

    def _take_window(self) -> list[_Item]:
        """The oldest texts, a few batches' worth, sorted by length; texts of finished requests dropped.

        Taken texts leave the admission bound: their jobs have started.
        """
        window: list[_Item] = []
        limit = self.policy.batch_size * _WINDOW_BATCHES
        texts = tokens = 0
        while self._pending and len(window) < limit:
            item = self._pending.popleft()
            item.job.queued_texts -= 1
            item.job.queued_tokens -= len(item.ids)
            item.job.started = True
            texts, tokens = texts + 1, tokens + len(item.ids)
            window.append(item)
        self.admission.release(texts, tokens)
        live = [i for i in window if not i.job.future.done()]
        if len(live) < len(window):
            self._count_dropped(len(window) - len(live), "cancelled")
        return sorted(live, key=lambda i: len(i.ids))

    def _cut(self, items: list[_Item]) -> list[list[_Item]]:
        """Split length-sorted items into the cheapest batches within ``batch_size`` and the padded-token budget."""
        policy = self.policy
        cuts = plan_cuts([len(i.ids) for i in items], policy.batch_size, policy.max_batch_tokens, policy.cost)
        return [items[start:end] for start, end in zip([0, *cuts], cuts, strict=False)]

    async def _run(self, batch: list[_Item], lanes: Lanes | None = None) -> None:
        """One inference off the loop (on ``lanes`` if given); each row goes to its job, which finishes with its
        last row."""
        live = [i for i in batch if not i.job.future.done()]
        if len(live) < len(batch):
            self._count_dropped(len(batch) - len(live), "cancelled")  # their clients left after the window
        if not live:
            return
        assert self._loop is not None
        ids = [i.ids for i in live]
        try:
            if lanes is not None:
                # The lanes run side by side: each batch's time buys 1/busy of the throughput.
                infer = functools.partial(self._infer, ids, lanes.encoder, lanes.busy)
                vectors = await self._loop.run_in_executor(lanes.executor, infer)
            elif self._inline(ids):
                vectors = self._infer(ids)  # on the loop: nothing else is open, and the run is short
            else:
                vectors = await self._loop.run_in_executor(self._executor, self._infer, ids)
        except Exception as exc:  # noqa: BLE001 - the failure belongs to the requests, not the worker
            for item in live:
                if not item.job.future.done():
                    item.job.future.set_exception(exc)
            return
        self.embedded += len(live)
        for item, vector in zip(live, vectors, strict=True):
            job = item.job
            job.out[item.row] = vector
            job.remaining -= 1
            if job.remaining == 0 and not job.future.done():
                job.future.set_result(job.out)

    def _inline(self, ids: list[list[int]]) -> bool:
        """Whether to run this batch on the event loop's thread: a lone request (no other one open, so the
        blocked loop keeps nobody waiting but newcomers, for one short run) whose batch is at most
        ``inline_max_tokens`` padded tokens. It saves the hand-over to the inference thread and back."""
        padded = len(ids) * max(len(x) for x in ids)
        return self._open_jobs <= 1 and padded <= self.policy.inline_max_tokens

    def _infer(self, ids: list[list[int]], encoder: OnnxEncoder | None = None, side_by_side: int = 1) -> Vectors:
        """Pad and run one batch on ``encoder`` (the model's own by default), on an inference thread: rows of
        ids → (rows, dim). ``side_by_side``: batches running at once, which share the measured time."""
        encoder = encoder or self.encoder
        batch = encoder.tokenizer.pad(ids)
        start = time.perf_counter()
        vectors = encoder.run(batch)
        seconds = time.perf_counter() - start
        self.admission.throughput.observe(sum(batch.token_counts), seconds / max(1, side_by_side))
        if self._metrics is not None:
            self._metrics.inference.labels(self.label).observe(seconds)
            self._metrics.batch_size.labels(self.label).observe(len(ids))
            self._metrics.batch_tokens.labels(self.label).observe(batch.input_ids.size)
        return vectors

    def close_soon(self) -> None:
        """Retire: the worker drains and ends once idle; requests holding this version are still served.

        Callable from any thread. A later submit (a request that resolved this version before it was
        released) restarts the worker, so a swap never fails a request.
        """
        if self._loop is None:
            self._retired = True
            return
        with contextlib.suppress(RuntimeError):  # the loop has already closed: nothing left to drain
            self._loop.call_soon_threadsafe(self._retire)

    def _retire(self) -> None:
        self._retired = True
        self._arrived.set()

    def _begin_close(self) -> None:
        self._closing = True
        self._arrived.set()

    async def close(self) -> None:
        """Stop taking work, finish everything queued, and wait for the worker to end."""
        self._begin_close()
        if self._worker is not None:
            await self._worker
