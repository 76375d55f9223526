"""The one error body every failing request answers with (``service/errors.py``)."""

from __future__ import annotations

import re
from typing import Any

# What every error body holds, and the shape of a code: stable snake_case (``model_not_found``).
ERROR_FIELDS = {"type", "code", "message", "param"}
CODE = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")


def assert_error_body(body: Any) -> dict[str, Any]:
    """``body`` is the one error body, with a snake_case ``code``; returns its ``error`` object."""
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert set(error) == ERROR_FIELDS, error
    assert isinstance(error["code"], str) and CODE.fullmatch(error["code"]), error
    return error


def assert_error(
    response: object, status: int, error_type: str, param: str | None = None, *, code: str | None = None
) -> str:
    """The one error body, with the expected status, type, param and (if given) code; returns the message."""
    assert getattr(response, "status_code", None) == status, getattr(response, "text", "")
    error = assert_error_body(response.json())  # type: ignore[attr-defined]
    assert error["type"] == error_type
    if param is not None:
        assert error["param"] == param
    if code is not None:
        assert error["code"] == code, error
    return str(error["message"])
