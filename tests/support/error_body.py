"""The one error body every failing request answers with (``service/errors.py``)."""

from __future__ import annotations


def assert_error(response: object, status: int, error_type: str, param: str | None = None) -> str:
    """The one error body, with the expected status, type and param; returns the message."""
    assert getattr(response, "status_code", None) == status, getattr(response, "text", "")
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"}
    assert set(body["error"]) == {"type", "message", "param"}
    assert body["error"]["type"] == error_type
    if param is not None:
        assert body["error"]["param"] == param
    return str(body["error"]["message"])
