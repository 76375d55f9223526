"""Schemathesis against the app's own OpenAPI schema, in process: the schema tells the truth.

Every response must be one the schema documents (status, content type, body schema: the one error body
``{"error": {...}}`` for every error, 422 included) and none may be a 5xx. Bounded so the suite stays fast:
at most 30 examples per operation and mode, no deadline, no shrinking beyond what a failure needs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from error_body import assert_error_body
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.python import asgi
from store_copies import copy_store

from xalign.service.app import create_app
from xalign.service.errors import STATUS
from xalign.service.settings import Settings

# The schema does not depend on settings; model_construct builds them without reading the environment.
# Models load only when an app starts, so this app is never started: requests go to ``live_app``.
_SCHEMA_APP = create_app(Settings.model_construct())
schema = schemathesis.openapi.from_dict(_SCHEMA_APP.openapi())
schema.app = _SCHEMA_APP  # selects the in-process ASGI transport
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def live_app(tiny_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    """An app over the tiny store; schemathesis starts its lifespan on the first request."""
    # A copy: the fuzzed promote and rollback routes may move an alias of a model they happen to name.
    root = tmp_path_factory.mktemp("fuzz")
    app = create_app(
        Settings(
            store=copy_store(tiny_store, root),
            threads=1,
            max_inputs_per_request=8,
            max_chars_per_input=200,
            poll_interval_s=0,
            data_dir=root / "data",
        )
    )
    yield app
    # Schemathesis keeps lifespans alive for the process; stop this app's model workers now.
    asgi.shutdown_lifespans()


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_responses_match_the_schema(case: schemathesis.Case[Any], live_app: FastAPI) -> None:
    response = case.call_and_validate(app=live_app, checks=CHECKS)
    if response.status_code >= 400:
        assert_error_body(response.json())


def _error_statuses(operation: dict[str, Any]) -> set[int]:
    return {int(status) for status in operation["responses"] if int(status) >= 400}


def test_every_operation_documents_its_errors_with_the_one_body() -> None:
    document = _SCHEMA_APP.openapi()
    assert not {"HTTPValidationError", "ValidationError"} & set(document["components"]["schemas"])
    operations = {(m.upper(), path): op for path, ops in document["paths"].items() for m, op in ops.items()}
    for (method, path), operation in operations.items():
        statuses = _error_statuses(operation)
        assert 500 in statuses, (method, path)
        assert statuses <= {status for status, _ in STATUS.values()} | {500}, (method, path)
        for status in statuses:
            content = operation["responses"][str(status)]["content"]["application/json"]
            assert content["schema"] == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, status)
        if "requestBody" in operation:
            assert {400, 413, 422} <= statuses, (method, path)
    # What the routes are made of: their scope, their parameters, what they do.
    assert _error_statuses(operations["GET", "/health"]) == {500}
    assert _error_statuses(operations["GET", "/v1/models"]) == {401, 500}
    assert _error_statuses(operations["POST", "/v1/embeddings"]) == {400, 401, 404, 413, 422, 429, 500, 503}
    assert _error_statuses(operations["POST", "/v1/indexes"]) == {400, 401, 403, 404, 409, 413, 422, 500, 503}
    assert _error_statuses(operations["DELETE", "/v1/indexes/{name}"]) == {401, 403, 404, 422, 500}
    assert _error_statuses(operations["POST", "/v1/bitext/mine"]) == {400, 401, 404, 409, 413, 422, 429, 500, 503}
    assert _error_statuses(operations["GET", "/v1/models/{model_id}"]) == {401, 404, 422, 500, 503}
    moves = {400, 401, 403, 404, 409, 413, 422, 500, 503}
    assert _error_statuses(operations["POST", "/v1/models/{name}/promote"]) == moves
    assert _error_statuses(operations["POST", "/v1/models/{name}/rollback"]) == moves
    for path in ("/v1/tokenize", "/v1/similarity", "/v1/rerank"):
        assert {400, 401, 413, 422, 500} <= _error_statuses(operations["POST", path]), path
    assert not [path for path in document["paths"] if path == "/ui" or path.startswith("/ui/")]
