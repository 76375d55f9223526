"""Optional OpenTelemetry tracing: one server span per request, named by its route, carrying the request id; none
when the setting is off; a clear refusal to start without the extra."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from xalign.service.app import create_app
from xalign.service.settings import Settings
from xalign.service.tracing import TracingUnavailableError, console_provider

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture(scope="module")
def exporter() -> InMemorySpanExporter:
    """Spans of this process, kept in memory: the provider is set up the way an operator's start-up code does."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


@pytest.fixture
def spans(exporter: InMemorySpanExporter) -> Iterator[InMemorySpanExporter]:
    exporter.clear()
    yield exporter
    exporter.clear()


def _client(tmp_path: Path, tracing: bool) -> TestClient:
    settings = Settings(store=tmp_path / "store", data_dir=tmp_path / "data", poll_interval_s=0, tracing=tracing)
    return TestClient(create_app(settings), raise_server_exceptions=False)


def test_a_request_makes_one_server_span_with_its_request_id(tmp_path: Path, spans: InMemorySpanExporter) -> None:
    with _client(tmp_path, tracing=True) as client:
        response = client.get("/v1/models", headers={"X-Request-ID": "trace-me-1", "traceparent": TRACEPARENT})
        assert response.status_code == 200 and response.headers["x-request-id"] == "trace-me-1"
        (span,) = spans.get_finished_spans()
        assert span.name == "GET /v1/models" and span.kind is trace.SpanKind.SERVER
        assert dict(span.attributes or {}) == {
            "http.request.method": "GET",
            "http.route": "/v1/models",
            "http.response.status_code": 200,
            "xalign.request_id": "trace-me-1",
        }
        # The caller's traceparent makes it a child of the caller's span.
        assert span.parent is not None and f"{span.parent.span_id:016x}" == TRACEPARENT.split("-")[2]
        assert f"{span.context.trace_id:032x}" == TRACEPARENT.split("-")[1]

        spans.clear()
        missing = client.get("/v1/nothing")
        (span,) = spans.get_finished_spans()
        assert span.name == "GET unmatched"
        assert span.attributes is not None and span.attributes["http.response.status_code"] == 404
        assert span.attributes["xalign.request_id"] == missing.headers["x-request-id"]
        assert span.status.status_code is trace.StatusCode.UNSET  # a 4xx is not the server's error


def test_no_spans_when_tracing_is_off(tmp_path: Path, spans: InMemorySpanExporter) -> None:
    with _client(tmp_path, tracing=False) as client:
        assert client.get("/v1/models").status_code == 200
    assert spans.get_finished_spans() == ()


# What an install without the extra sees: no OpenTelemetry, or only the API (recent FastAPI depends on it).
@pytest.mark.parametrize("missing", [("opentelemetry",), ("opentelemetry.sdk", "opentelemetry.sdk.trace")])
def test_tracing_without_the_extra_refuses_to_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, missing: tuple[str, ...]
) -> None:
    for module in missing:
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(TracingUnavailableError, match=r"XALIGN_TRACING.*xalign\[tracing\]"):
        create_app(Settings(store=tmp_path / "store", tracing=True))
    create_app(Settings(store=tmp_path / "store", tracing=False))  # off: nothing to import


def test_the_console_provider_prints_spans_with_the_service_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    out = io.StringIO()
    provider = console_provider("xalign-test", out)
    with provider.get_tracer("test").start_as_current_span("GET /health"):
        pass
    provider.force_flush()
    printed = json.loads(out.getvalue())
    assert printed["name"] == "GET /health"
    assert printed["resource"]["attributes"]["service.name"] == "xalign-test"
    provider.shutdown()
