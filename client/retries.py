"""When the client retries a request and how long it waits first; shared by the sync and async runners.

Retried: 429 and 503 (the service answers them before doing any work, so even a request that creates state is
safe to send again), and, for idempotent calls only, connection errors and timeouts. Never another status.
The wait is the server's ``Retry-After`` when it sends one, else exponential backoff with jitter.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import httpx

from xalign.client.errors import retry_after_seconds

RETRIED_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class RetryPolicy:
    """Up to ``max_retries`` retries; backoff ``initial_delay * 2**attempt`` capped at ``max_delay``, jittered.

    A ``Retry-After`` over ``max_retry_after`` seconds is not waited for: the error is raised at once.
    """

    max_retries: int = 3
    initial_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def backoff(self, attempt: int) -> float:
        """Seconds before retry ``attempt + 1`` (attempt counts from 0): 75-100 % of the capped exponential."""
        base = min(self.max_delay, self.initial_delay * (2.0**attempt))
        return base * (0.75 + 0.25 * self.rng.random())

    def after_response(self, attempt: int, response: httpx.Response) -> float | None:
        """Seconds to wait before sending again after ``response``, or ``None`` to answer with it."""
        if response.status_code not in RETRIED_STATUSES or attempt >= self.max_retries:
            return None
        advised = retry_after_seconds(response)
        if advised is None:
            return self.backoff(attempt)
        return advised if advised <= self.max_retry_after else None

    def after_error(self, attempt: int, idempotent: bool) -> float | None:
        """Seconds to wait before sending again after a connection error, or ``None`` to raise it."""
        if not idempotent or attempt >= self.max_retries:
            return None
        return self.backoff(attempt)
