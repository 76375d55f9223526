"""Per-connection deadlines that uvicorn lacks: headers and bodies must arrive in time.

uvicorn's httptools protocol closes a kept-alive connection left idle for ``timeout_keep_alive`` after a
response, and nothing else: a fresh connection that never sends a byte, a client trickling its headers one
byte at a time, or one trickling its body, holds a connection (and, for a body, a request task) for as long as
it likes. ``protocol_with(timeouts)`` is that protocol with one timer per connection on top:

- headers: from the connection's start (first request) or the first byte of a later request on a kept-alive
  connection, until the request's headers are complete;
- body: from the end of the headers until the body's last byte.

When a deadline passes, a request that has begun and has no response yet is answered 408 with the service's
error body; the connection is closed in every case, and the request's handler sees a disconnect.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from xalign.service.errors import error_body

Phase = Literal["headers", "body"]


@dataclass(frozen=True)
class ConnectionTimeouts:
    """Seconds allowed for an idle kept-alive connection, a request's headers and its body."""

    keep_alive_s: float
    header_s: float
    body_s: float


def _timeout_response(what: str, seconds: float) -> bytes:
    message = f"the request's {what} did not arrive within {seconds:g} s"
    body = json.dumps(error_body("request_timeout", message, code="request_timeout"))
    head = (
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return (head + body).encode("ascii")


class TimedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header and body deadlines (see the module docstring)."""

    timeouts: ClassVar[ConnectionTimeouts] = ConnectionTimeouts(keep_alive_s=5.0, header_s=10.0, body_s=60.0)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # uvicorn types this as int but only hands it to loop.call_later, which takes any float.
        self.timeout_keep_alive = self.timeouts.keep_alive_s  # type: ignore[assignment]
        self._begun = False  # a byte of the current request has arrived
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the first request's header deadline: a connection that sends nothing is closed too."""
        super().connection_made(transport)
        self._start("headers", self.timeouts.header_s)

    def connection_lost(self, exc: Exception | None) -> None:
        """Drop the timer with the connection."""
        self._stop()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        """A request's first byte: its header deadline starts unless the connection's first one runs already."""
        super().on_message_begin()
        self._begun = True
        if self._deadline is None:
            self._start("headers", self.timeouts.header_s)

    def on_headers_complete(self) -> None:
        """Headers in time: the body's deadline starts (cancelled at once when there is no body)."""
        self._stop()
        super().on_headers_complete()
        self._start("body", self.timeouts.body_s)

    def on_message_complete(self) -> None:
        """The whole request arrived: no deadline until the next one begins."""
        self._stop()
        self._begun = False
        super().on_message_complete()

    def _start(self, phase: Phase, seconds: float) -> None:
        self._stop()
        self._deadline = self.loop.call_later(seconds, self._expire, phase, seconds)

    def _stop(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self, phase: Phase, seconds: float) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        cycle = self.cycle if phase == "body" else None
        # A connection that never sent a byte gets no answer; a request without a response yet gets a 408.
        if self._begun and (cycle is None or not cycle.response_started):
            self.transport.write(_timeout_response(phase, seconds))
        if cycle is not None:
            # The handler waiting for more body sees a disconnect; anything it sends now is dropped.
            cycle.disconnected = True
            cycle.message_event.set()
        self.transport.close()


def protocol_with(timeouts: ConnectionTimeouts) -> type[TimedHttpToolsProtocol]:
    """The protocol class to hand uvicorn (``http=``), with these timeouts."""
    configured = timeouts

    class Configured(TimedHttpToolsProtocol):
        timeouts = configured

    return Configured
