"""The attempts of one call, without I/O: what to send, and after each outcome how long to wait or how to end.

Both runners (``client/sync_runner.py``, ``client/async_runner.py``) loop over this: send ``request``, then ask
:meth:`Attempts.after_response` or :meth:`Attempts.after_error`, which return the seconds to sleep before sending
again, ``None`` for a success, or raise the client's error.
"""

from __future__ import annotations

from typing import Any

import httpx

from xalign.client.calls import Builder, Call
from xalign.client.errors import REQUEST_ID_HEADER, connection_error, error_from_response
from xalign.client.retries import RetryPolicy


class Attempts:
    """One call's request (the same one on every attempt) and the count of retries so far."""

    def __init__(self, call: Call[Any], policy: RetryPolicy, build: Builder) -> None:
        self.call = call
        self.policy = policy
        self.request = call.request(build)
        self.retries = 0

    @property
    def request_id(self) -> str:
        """The ``X-Request-Id`` every attempt carries."""
        return self.request.headers[REQUEST_ID_HEADER]

    def after_response(self, response: httpx.Response) -> float | None:
        """``None`` for a success; else seconds to wait before retrying, or raise its error (body read)."""
        if response.is_success:
            return None
        delay = self.policy.after_response(self.retries, response)
        if delay is None:
            raise error_from_response(response)
        self.retries += 1
        return delay

    def after_error(self, exc: httpx.TransportError) -> float:
        """Seconds to wait before retrying after a transport failure, or raise it as the client's error."""
        delay = self.policy.after_error(self.retries, self.call.idempotent)
        if delay is None:
            raise connection_error(exc, self.request_id) from exc
        self.retries += 1
        return delay
