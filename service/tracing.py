"""Optional OpenTelemetry tracing (setting ``tracing``, extra ``tracing``): one server span per request.

The span is named ``METHOD /route/{template}`` and carries ``http.request.method``, ``http.route``,
``http.response.status_code`` and ``xalign.request_id`` (the id in the ``X-Request-ID`` header and the
logs), so a slow trace leads to its log lines. A ``traceparent`` header from the caller makes the span a
child of the caller's trace.

Where spans go is the tracer provider's business, set up the OpenTelemetry way: by the operator's code
(or ``opentelemetry-instrument``) before the app starts. Only ``OTEL_TRACES_EXPORTER=console`` with no
provider set up is handled here, for a look without a collector: a provider whose ``service.name`` is
``OTEL_SERVICE_NAME`` or the setting ``tracing_service_name``, printing each span to stdout.

OpenTelemetry is imported only when tracing is on (this module is the one that imports it), so a service
installed without the extra runs as before; with ``tracing`` on and no extra, the app refuses to start.
"""

from __future__ import annotations

import inspect
import logging
import os
import sys
from typing import IO, TYPE_CHECKING, Any

from fastapi import FastAPI

from xalign.service.asgi import ASGIApp, HttpMiddleware, Message, Receive, Scope, Send, method_label, route_template
from xalign.service.log_config import request_id_var
from xalign.service.settings import Settings, env_name

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

log = logging.getLogger("xalign.service")

INSTRUMENTATION = "xalign.service"
REQUEST_ID_ATTRIBUTE = "xalign.request_id"


class TracingUnavailableError(RuntimeError):
    """``tracing`` is on but OpenTelemetry is not installed."""


def tracer_for(settings: Settings) -> Tracer:
    """The tracer of the service's spans: from the configured provider (console, see above, if none is)."""
    try:
        # The extra is optional: imported only when tracing is on. FastAPI may bring the API alone; the SDK is the
        # extra's (a provider to export spans needs it).
        import opentelemetry.sdk.trace  # noqa: F401, PLC0415
        from opentelemetry import trace  # noqa: PLC0415
    except ImportError as exc:
        raise TracingUnavailableError(
            f"{env_name('tracing')} is on but OpenTelemetry is not installed: install the extra "
            "(pip install 'xalign[tracing]') or turn tracing off"
        ) from exc
    if "console" in _exporters() and isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        trace.set_tracer_provider(console_provider(settings.tracing_service_name))
        log.info("tracing: spans are printed to stdout (OTEL_TRACES_EXPORTER=console)")
    return trace.get_tracer(INSTRUMENTATION)


def fastapi_telemetry_off() -> dict[str, Any]:
    """``FastAPI(...)`` keywords that turn FastAPI's own OpenTelemetry instrumentation off (FastAPI 0.16x+ has one;
    older versions need none): the service's spans are :class:`RequestTracing`'s, one per request, made only when
    ``tracing`` is on, whatever tracer provider the process has."""
    if "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        return {}
    return {"telemetry": {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}}


def _exporters() -> set[str]:
    return {name.strip().lower() for name in os.environ.get("OTEL_TRACES_EXPORTER", "").split(",")}


def console_provider(service_name: str, out: IO[str] = sys.stdout) -> TracerProvider:
    """An SDK tracer provider that prints finished spans to ``out`` (``OTEL_SERVICE_NAME`` wins over the name)."""
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter  # noqa: PLC0415

    name = os.environ.get("OTEL_SERVICE_NAME") or service_name
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}))
    provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter(out=out)))
    return provider


class RequestTracing(HttpMiddleware):
    """A server span around each HTTP request; inside ``RequestObservability``, which assigns the request id."""

    def __init__(self, app: ASGIApp, tracer: Tracer) -> None:
        from opentelemetry import propagate, trace  # noqa: PLC0415 (loaded already: tracer_for imported it)

        super().__init__(app)
        self.tracer = tracer
        self._extract = propagate.extract
        self._server = trace.SpanKind.SERVER
        self._error = trace.Status(trace.StatusCode.ERROR)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request inside its span; name it by its route and record its status when it ends."""
        carrier = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope.get("headers", ())}
        method = method_label(scope)
        attributes = {"http.request.method": method, REQUEST_ID_ATTRIBUTE: request_id_var.get() or ""}
        parent = self._extract(carrier)  # the caller's trace, if it sent a traceparent
        with self.tracer.start_as_current_span(method, parent, self._server, attributes) as span:
            status = {"code": 500}

            async def send_status(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status["code"] = int(message["status"])
                await send(message)

            try:
                await self.app(scope, receive, send_status)
            finally:
                self._finish(span, method, route_template(scope), status["code"])

    def _finish(self, span: Span, method: str, route: str, status: int) -> None:
        """Name the span by its route (known once the app has routed) and record the status; 5xx is an error."""
        span.update_name(f"{method} {route}")
        span.set_attribute("http.route", route)
        span.set_attribute("http.response.status_code", status)
        if status >= 500:  # a 4xx is the client's error, not the server's (OpenTelemetry's HTTP conventions)
            span.set_status(self._error)
