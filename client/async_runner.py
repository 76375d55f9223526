"""Sends calls over ``httpx.AsyncClient``: retries per ``client/attempts.py``, errors per ``client/errors.py``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import httpx

from xalign.client.attempts import Attempts
from xalign.client.calls import Call
from xalign.client.errors import REQUEST_ID_HEADER, connection_error
from xalign.client.options import ClientOptions

T = TypeVar("T")


class AsyncRunner:
    """The asyncio transport of :class:`xalign.client.AsyncClient`."""

    def __init__(self, options: ClientOptions, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.options = options
        self.http = httpx.AsyncClient(transport=transport, **options.http_settings())

    async def run(self, call: Call[T]) -> T:
        """Send ``call`` (retrying as its policy allows) and parse the successful response."""
        return call.parse(await self.send(call))

    async def send(self, call: Call[Any], *, stream: bool = False) -> httpx.Response:
        """The successful response to ``call``; with ``stream`` its body is still to be read (and closed)."""
        attempts = Attempts(call, self.options.retry, self.http.build_request)
        while True:
            try:
                response = await self.http.send(attempts.request, stream=stream)
                if not response.is_success:
                    await response.aread()  # the error body, before the response is dropped or retried
            except httpx.TransportError as exc:
                await asyncio.sleep(attempts.after_error(exc))
                continue
            if (delay := attempts.after_response(response)) is None:
                return response
            await asyncio.sleep(delay)

    async def lines(self, call: Call[Any]) -> AsyncIterator[str]:
        """The non-blank lines of ``call``'s streamed body (JSON lines), read as they arrive."""
        response = await self.send(call, stream=True)
        try:
            async for line in response.aiter_lines():
                if line.strip():
                    yield line
        except httpx.TransportError as exc:
            raise connection_error(exc, response.request.headers.get(REQUEST_ID_HEADER, "")) from exc
        finally:
            await response.aclose()

    async def close(self) -> None:
        """Close the connection pool."""
        await self.http.aclose()
