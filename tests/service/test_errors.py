"""The one error body carries a stable ``code`` beside its ``type``: each error class has one, a raise site may
name a more specific one, and what the framework answers (404 route, 405, 400 not JSON, 422, 500) has one too."""

from __future__ import annotations

import json
from pathlib import Path

from error_body import CODE, assert_error
from fastapi.testclient import TestClient

from xalign.service.app import create_app
from xalign.service.errors import (
    DEFAULT_CODES,
    STATUS,
    ErrorBody,
    NotFoundError,
    OverloadedError,
    QueueTimeoutError,
    ServiceError,
)
from xalign.service.settings import Settings


def test_every_error_class_has_a_snake_case_code_and_a_raise_site_may_name_its_own() -> None:
    assert set(DEFAULT_CODES) == set(STATUS)
    assert all(CODE.fullmatch(code) for code in DEFAULT_CODES.values()), DEFAULT_CODES
    assert len(set(DEFAULT_CODES.values())) == len(DEFAULT_CODES), "two classes share a default code"
    assert NotFoundError("x").code == "not_found"
    assert NotFoundError("x", "model", code="model_not_found").code == "model_not_found"
    assert OverloadedError("x", 3).code == "queue_full"
    assert OverloadedError("x", 3, code="too_many_concurrent_requests").code == "too_many_concurrent_requests"
    assert QueueTimeoutError("x").code == "queue_timeout"  # its own, not its base's (OverloadedError)
    assert ServiceError("x").code == "internal_error"


def test_the_schema_requires_code() -> None:
    detail = ErrorBody.model_json_schema()["$defs"]["ErrorDetail"]
    assert set(detail["required"]) == {"type", "code", "message", "param"}


def test_what_the_framework_answers_has_a_code(client: TestClient) -> None:
    assert_error(client.get("/v1/nothing"), 404, "not_found_error", code="route_not_found")
    assert_error(client.delete("/v1/embeddings"), 405, "invalid_request_error", code="method_not_allowed")
    headers = {"content-type": "application/json"}
    not_json = client.post("/v1/embeddings", content=b"{not json", headers=headers)
    assert_error(not_json, 400, "invalid_request_error", code="invalid_json")
    surrogate = client.post("/v1/embeddings", content=json.dumps({"input": "\ud800"}), headers=headers)
    assert_error(surrogate, 400, "invalid_request_error", "input", code="invalid_unicode")
    assert_error(client.post("/v1/embeddings", json={}), 422, "validation_error", "input", code="validation_failed")
    unknown = client.post("/v1/embeddings", json={"input": "x", "model": "ghost"})
    assert_error(unknown, 404, "not_found_error", "model", code="model_not_found")


def test_an_unexpected_error_is_internal_error_and_says_nothing_of_its_cause(tmp_path: Path) -> None:
    app = create_app(Settings(store=tmp_path / "store", data_dir=tmp_path / "data", poll_interval_s=0))

    async def boom() -> None:
        raise RuntimeError("secret cause at /srv/keys")

    app.add_api_route("/boom", boom)
    with TestClient(app, raise_server_exceptions=False) as client:
        message = assert_error(client.get("/boom"), 500, "internal_error", code="internal_error")
    assert message == "internal server error"
