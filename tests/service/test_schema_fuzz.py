"""Schemathesis against the app's own OpenAPI schema, in process: no 5xx, and every error in the one body.

Bounded so the suite stays fast: at most 30 examples per operation and mode, no deadline, no shrinking
beyond what a failure needs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.python import asgi

from service.app import create_app
from service.settings import Settings

# The schema does not depend on settings; model_construct builds them without reading the environment.
# Models load only when an app starts, so this app is never started: requests go to ``live_app``.
_SCHEMA_APP = create_app(Settings.model_construct())
schema = schemathesis.openapi.from_dict(_SCHEMA_APP.openapi())
schema.app = _SCHEMA_APP  # selects the in-process ASGI transport


@pytest.fixture(scope="module")
def live_app(tiny_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    """An app over the tiny store; schemathesis starts its lifespan on the first request."""
    app = create_app(
        Settings(
            store=tiny_store,
            threads=1,
            max_inputs_per_request=8,
            max_chars_per_input=200,
            poll_interval_s=0,
            data_dir=tmp_path_factory.mktemp("fuzz-data"),
        )
    )
    yield app
    # Schemathesis keeps lifespans alive for the process; stop this app's model workers now.
    asgi.shutdown_lifespans()


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_server_errors_and_one_error_body(case: schemathesis.Case[Any], live_app: FastAPI) -> None:
    response = case.call(app=live_app)
    assert response.status_code < 500, (case.as_curl_command(), response.text)
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error"}, response.text
        assert set(body["error"]) == {"type", "message", "param"}, response.text
