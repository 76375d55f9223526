"""Sends calls over ``httpx.Client``: retries per ``client/attempts.py``, errors per ``client/errors.py``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, TypeVar

import httpx

from xalign.client.attempts import Attempts
from xalign.client.calls import Call
from xalign.client.errors import REQUEST_ID_HEADER, connection_error
from xalign.client.options import ClientOptions

T = TypeVar("T")


class SyncRunner:
    """The blocking transport of :class:`xalign.client.Client`."""

    def __init__(self, options: ClientOptions, transport: httpx.BaseTransport | None = None) -> None:
        self.options = options
        self.http = httpx.Client(transport=transport, **options.http_settings())

    def run(self, call: Call[T]) -> T:
        """Send ``call`` (retrying as its policy allows) and parse the successful response."""
        return call.parse(self.send(call))

    def send(self, call: Call[Any], *, stream: bool = False) -> httpx.Response:
        """The successful response to ``call``; with ``stream`` its body is still to be read (and closed)."""
        attempts = Attempts(call, self.options.retry, self.http.build_request)
        while True:
            try:
                response = self.http.send(attempts.request, stream=stream)
                if not response.is_success:
                    response.read()  # the error body, before the response is dropped or retried
            except httpx.TransportError as exc:
                time.sleep(attempts.after_error(exc))
                continue
            if (delay := attempts.after_response(response)) is None:
                return response
            time.sleep(delay)

    def lines(self, call: Call[Any]) -> Iterator[str]:
        """The non-blank lines of ``call``'s streamed body (JSON lines), read as they arrive."""
        response = self.send(call, stream=True)
        request_id = response.request.headers.get(REQUEST_ID_HEADER, "")
        try:
            for line in response.iter_lines():
                if line.strip():
                    yield line
        except httpx.TransportError as exc:
            raise connection_error(exc, request_id) from exc
        finally:
            response.close()

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()
