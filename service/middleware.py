"""Pure ASGI middleware: request ids, per-route metrics, JSON access logs, the request body limit, and
cancellation of a request whose client disconnected.

Pure ASGI rather than ``BaseHTTPMiddleware``: no response wrapping per request (one small watcher task
once a body is read), so the service stays within a few hundred microseconds of a bare onnxruntime session.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from typing import Any

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse

from xalign.service.asgi import (
    ASGIApp,
    HttpMiddleware,
    Message,
    Receive,
    Scope,
    Send,
    header,
    method_label,
    route_template,
)
from xalign.service.errors import INTERNAL_ERROR, STATUS, PayloadTooLargeError, error_body
from xalign.service.log_config import request_id_var
from xalign.service.metrics import Metrics
from xalign.service.settings import Settings
from xalign.service.tracing import RequestTracing, tracer_for

REQUEST_ID_HEADER = "x-request-id"
# A client's id is reused only if it cannot break a log line or a header, and is not absurdly long.
_SANE_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
# What a browser on an allowed origin may send and read (CORS): the methods and headers the API uses.
CORS_METHODS = ["GET", "POST", "DELETE"]
CORS_HEADERS = ["Authorization", "Content-Type", "X-API-Key", "X-Request-ID"]
CORS_EXPOSED = ["X-Request-ID", "Retry-After"]

log = logging.getLogger("xalign.service")
access_log = logging.getLogger("xalign.access")


def request_id_of(scope: Scope) -> str:
    """The client's ``X-Request-Id`` if it is sane, else a fresh random id."""
    raw = header(scope, REQUEST_ID_HEADER.encode())
    if raw is not None:
        text = raw.decode("latin-1")
        if _SANE_ID.fullmatch(text):
            return text
    return uuid.uuid4().hex


def _error(status: int, kind: str, message: str, code: str) -> JSONResponse:
    return JSONResponse(error_body(kind, message, code=code), status_code=status)


class RequestObservability(HttpMiddleware):
    """Give each request an id (header, log lines), count it per route and status, and log it as JSON."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        super().__init__(app)
        self.metrics = metrics

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request with its id in context; record status and duration when it ends."""
        request_id = request_id_of(scope)
        token = request_id_var.set(request_id)
        id_header = (REQUEST_ID_HEADER.encode(), request_id.encode("ascii"))
        state = {"status": 500, "started": False}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"], state["started"] = message["status"], True
                message = {**message, "headers": [*message.get("headers", ()), id_header]}
            await send(message)

        start = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # Logged here, inside the request's context, so the traceback carries its request id;
            # the client sees only the one error body, never the cause.
            log.exception("unexpected error")
            state["status"] = 500
            if not state["started"]:
                internal = _error(500, "internal_error", "internal server error", INTERNAL_ERROR)
                await internal(scope, receive, send_with_id)
        finally:
            self._observe(scope, int(state["status"]), time.perf_counter() - start)
            request_id_var.reset(token)

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        route, method = route_template(scope), method_label(scope)
        self.metrics.requests.labels(route, method, str(status)).inc()
        self.metrics.latency.labels(route, method).observe(seconds)
        if access_log.isEnabledFor(logging.INFO):
            duration_ms = round(seconds * 1000, 3)
            extra = {"method": method, "route": route, "status": status, "duration_ms": duration_ms}
            access_log.info("%s %s %d %.1f ms", method, route, status, duration_ms, extra=extra)


class BodySizeLimit(HttpMiddleware):
    """Answer 413 to bodies over ``max_bytes``: from Content-Length, or counted as a chunked body arrives."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        super().__init__(app)
        self.max_bytes = max_bytes

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the declared length, or read and count an undeclared (chunked) body before the app sees it."""
        declared = header(scope, b"content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                invalid = _error(400, "invalid_request_error", "invalid Content-Length", "invalid_content_length")
                await invalid(scope, receive, send)
            elif int(declared) > self.max_bytes:
                await self._too_large(scope, receive, send)
            else:
                # The server stops reading at Content-Length, so the declared length bounds the body.
                await self.app(scope, receive, send)
            return
        body = await self._read_within_limit(receive)
        if body is None:
            await self._too_large(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read_within_limit(self, receive: Receive) -> bytes | None:
        """The whole body, or ``None`` as soon as it exceeds the limit."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(chunks)
            chunk = bytes(message.get("body", b""))
            size += len(chunk)
            if size > self.max_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        status, kind = STATUS[PayloadTooLargeError]
        message = f"request body is larger than {self.max_bytes} bytes"
        await _error(status, kind, message, "body_too_large")(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that yields the already-read body once, then defers to the server (disconnects)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


# Status recorded (metrics, access log) for a request whose client went away first (nginx's convention).
CLIENT_CLOSED = 499


class _DisconnectWatch:
    """One request's view of its connection: once the body is in, a watcher task waits for the disconnect.

    After the body, the server has only ``http.disconnect`` left to say; the watcher is then the only
    reader of the server's ``receive``, and the app's own later reads (Starlette's streaming responses
    listen for the disconnect) get the message from it.
    """

    def __init__(self, receive: Receive, handler: asyncio.Task[Any]) -> None:
        self._receive = receive
        self._handler = handler
        self._body_done = False
        self._response_done = False
        self._disconnected = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None
        self.fired = False  # the handler was cancelled because the client left

    async def receive(self) -> Message:
        """The server's messages until the body is complete; then the disconnect, when it comes."""
        if self._body_done:
            await self._disconnected.wait()
            return {"type": "http.disconnect"}
        message = await self._receive()
        if message["type"] == "http.disconnect":
            self._body_done = True
            self._disconnected.set()
        elif not message.get("more_body", False):
            self._body_done = True
            self._watcher = asyncio.get_running_loop().create_task(self._watch(), name="disconnect watch")
        return message

    def sender(self, send: Send) -> Send:
        """``send`` that notes when the response is complete (a disconnect after it cancels nothing)."""

        async def tracked(message: Message) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                self._response_done = True
            await send(message)

        return tracked

    async def _watch(self) -> None:
        while (await self._receive())["type"] != "http.disconnect":
            pass  # nothing else may follow a complete body; wait on
        self._disconnected.set()
        if not self._response_done:
            self.fired = True
            self._handler.cancel()

    def stop(self) -> None:
        """End the watcher (the request is over)."""
        if self._watcher is not None and not self._watcher.done():
            self._watcher.cancel()


class DisconnectCancels(HttpMiddleware):
    """Cancel a request's handler when its client disconnects, so that its queued work is dropped.

    Cancelling the handler cancels what it awaits: a batcher job leaves the queue and gives back its
    reserved tokens (``service/engine/batcher.py``). Requests whose body is not read are not watched.
    """

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app with a watched ``receive``; a cancel that the disconnect caused ends the request quietly."""
        handler = asyncio.current_task()
        if handler is None:
            await self.app(scope, receive, send)
            return
        watch = _DisconnectWatch(receive, handler)
        try:
            await self.app(scope, watch.receive, watch.sender(send))
        except asyncio.CancelledError:
            if not watch.fired:
                raise
            handler.uncancel()
            # Nobody reads it (the server drops sends after a disconnect); metrics and the access log do.
            await send({"type": "http.response.start", "status": CLIENT_CLOSED, "headers": []})
        finally:
            watch.stop()


def install_middleware(app: FastAPI, metrics: Metrics, settings: Settings) -> None:
    """Add, inner to outer: the body limit, disconnect cancellation, tracing (if on), observability (so it sees
    413s and 499s, and tracing sees its request id), and CORS (if origins are set: its headers go on every
    answer, errors included, and preflights are answered before anything else)."""
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(DisconnectCancels)
    if settings.tracing:
        app.add_middleware(RequestTracing, tracer=tracer_for(settings))
    app.add_middleware(RequestObservability, metrics=metrics)
    if settings.cors_allow_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_allow_origins,
            allow_methods=CORS_METHODS,
            allow_headers=CORS_HEADERS,
            expose_headers=CORS_EXPOSED,
        )
