"""What the service's pure ASGI middleware share: the ASGI types, header lookup, the matched route's template,
and a base class that acts on HTTP requests only (``service/middleware.py``, ``service/tracing.py``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Label for requests that matched no route: raw paths would let any client grow a metric without bound.
UNMATCHED = "unmatched"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of header ``name`` (lower case) in the request, if any."""
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value)
    return None


def route_template(scope: Scope) -> str:
    """The matched route's template (``/v1/indexes/{name}``), or ``unmatched`` (known once the app has routed)."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return template if isinstance(template, str) else UNMATCHED


def method_label(scope: Scope) -> str:
    """The request's method, or ``OTHER`` for one the API does not know (a label must not grow without bound)."""
    method = str(scope["method"])
    return method if method in _METHODS else "OTHER"


class HttpMiddleware:
    """A pure ASGI middleware that acts on HTTP requests only: other scopes (the lifespan) pass straight through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Hand an HTTP request to :meth:`handle`, anything else to the app unchanged."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """What the middleware does with one HTTP request (subclasses say)."""
        raise NotImplementedError
