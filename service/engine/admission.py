"""Admission by work: what a model version's queue may hold, reserved before a request is queued.

A request is admitted whole or refused whole. Its real tokens (and texts) are reserved in one step on
the event loop, with no ``await`` between the check and the enqueue, so concurrent requests cannot
overshoot the bound. Refusals are 429 with a Retry-After computed from the queued tokens and the
throughput measured on recent batches; a request over the per-request token maximum is 413 (the
status of every other request-size limit in ``service.errors``). Senses requests, which run one
forward pass each outside the batcher, are bounded by a number of concurrent slots instead.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from xalign.service.errors import OverloadedError, PayloadTooLargeError
from xalign.service.metrics import Metrics
from xalign.service.settings import Settings

T = TypeVar("T")

# Longest Retry-After we advise: past a minute a client should rather look elsewhere.
_MAX_RETRY_AFTER_S = 60
# Weight of the newest batch in the throughput average (a few batches smooth out one slow one).
_RATE_WEIGHT = 0.2


@dataclass
class Throughput:
    """Real tokens per second of recent inference batches (exponential moving average); 0 until measured."""

    tokens_per_s: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def observe(self, tokens: int, seconds: float) -> None:
        """Fold one batch in (called on the inference thread)."""
        if seconds <= 0 or tokens <= 0:
            return
        rate = tokens / seconds
        with self._lock:
            old = self.tokens_per_s
            self.tokens_per_s = rate if old == 0 else (1 - _RATE_WEIGHT) * old + _RATE_WEIGHT * rate


@dataclass(frozen=True)
class Bounds:
    """Most tokens and texts queued per model version, most tokens in one request, and the longest estimated wait.

    Their values and defaults are the settings' (``service/settings.py``), the one place that defines them.
    """

    max_tokens: int
    max_texts: int
    max_request_tokens: int
    max_wait_s: float  # seconds of queued work (queued tokens / measured throughput); 0: off

    @classmethod
    def from_settings(cls, settings: Settings) -> Bounds:
        """The bounds the service settings ask for."""
        return cls(
            max_tokens=settings.max_queue_tokens,
            max_texts=settings.max_queue,
            max_request_tokens=settings.max_tokens_per_request,
            max_wait_s=settings.max_queue_wait_s,
        )

    @property
    def request_tokens(self) -> int:
        """The per-request maximum actually applied: never above the queue bound, so any request fits alone."""
        return min(self.max_request_tokens, self.max_tokens)


class Admission:
    """The reservations of one queue: tokens and texts of admitted requests not yet taken for inference."""

    def __init__(self, bounds: Bounds, label: str, metrics: Metrics | None = None) -> None:
        self.bounds = bounds
        self.label = label
        self.throughput = Throughput()
        self.tokens = 0
        self.texts = 0
        self._metrics = metrics

    def precheck(self, texts: int) -> None:
        """Refuse at once, before tokenising, when the queue has no room for even one token or no time left."""
        if self.tokens >= self.bounds.max_tokens or self._backlog_too_long():
            self._refuse(texts)

    def reserve(self, texts: int, tokens: int) -> None:
        """Reserve a whole request, or raise: 413 over the per-request maximum, 429 when it does not fit.

        The token bound is strict (a request never exceeds it on its own); the text bound lets an empty
        queue take any request, as before. The time bound looks at the work already queued, not at the
        newcomer's own: a large request (mining) is taken whenever the backlog is short, and those behind
        it are then refused promptly rather than queued for tens of seconds.
        """
        if tokens > self.bounds.request_tokens:
            raise PayloadTooLargeError(
                f"the request has {tokens} tokens; at most {self.bounds.request_tokens} per request",
                None,
                code="too_many_tokens",
            )
        over_texts = self.texts > 0 and self.texts + texts > self.bounds.max_texts
        if self.tokens + tokens > self.bounds.max_tokens or over_texts or self._backlog_too_long():
            self._refuse(texts)
        self._add(texts, tokens)

    def release(self, texts: int, tokens: int) -> None:
        """Give back what texts leaving the queue had reserved (taken for inference, cancelled or expired)."""
        self._add(-texts, -tokens)

    def backlog_s(self) -> float:
        """Seconds the queued tokens take at the measured rate (0 until a batch has been measured)."""
        rate = self.throughput.tokens_per_s
        return self.tokens / rate if rate > 0 else 0.0

    def _backlog_too_long(self) -> bool:
        return self.bounds.max_wait_s > 0 and self.backlog_s() > self.bounds.max_wait_s

    def retry_after(self) -> int:
        """Seconds until the queued tokens should have drained at the measured rate (1 to 60)."""
        return max(1, min(_MAX_RETRY_AFTER_S, math.ceil(self.backlog_s())))

    def _add(self, texts: int, tokens: int) -> None:
        self.texts += texts
        self.tokens += tokens
        if self._metrics is not None:
            self._metrics.queue_size.labels(self.label).inc(texts)
            self._metrics.queue_tokens.labels(self.label).inc(tokens)

    def _refuse(self, texts: int) -> None:
        if self._metrics is not None:
            self._metrics.rejected.labels(self.label).inc(texts)
        message = f"{self.label}: {self.tokens} tokens ({self.texts} texts) are queued; retry later"
        raise OverloadedError(message, self.retry_after())


class WorkSlots:
    """At most ``size`` pieces of blocking work at once (e.g. senses forward passes); 429 when all are taken."""

    def __init__(self, size: int, label: str) -> None:
        self.size = size
        self.label = label
        self.busy = 0

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """Run ``fn(*args)`` on a worker thread in a free slot, or raise ``OverloadedError``.

        A cancelled caller (its client went away) frees the slot only when the thread has finished,
        so the bound holds for the threads actually running.
        """
        if self.busy >= self.size:
            message = f"{self.label}: {self.busy} requests are running; retry later"
            raise OverloadedError(message, 1, code="too_many_concurrent_requests")
        self.busy += 1
        call = functools.partial(contextvars.copy_context().run, fn, *args)  # log lines keep the request id
        future = asyncio.get_running_loop().run_in_executor(None, call)
        future.add_done_callback(self._free)
        return await asyncio.shield(future)

    def _free(self, _: asyncio.Future[T]) -> None:
        self.busy -= 1
