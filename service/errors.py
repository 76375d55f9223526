"""One exception tree, one status table, one error body: ``{"error": {"type", "code", "message", "param"}}``.

Routes raise ``ServiceError`` subclasses; store errors and validation errors are
translated here; anything unexpected becomes a 500 whose message says nothing of
its cause (the cause goes to the log, with the request id).

``type`` is one per status (the table below); ``code`` is a stable snake_case name of what went wrong, for
programs to branch on: each error class has a default (``DEFAULT_CODES``) and a raise site may name a more
specific one (``model_not_found``, ``input_too_long``...). docs/api.md lists them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from xalign.modelstore import InvalidNameError, ModelNotFoundError, ReferenceNotFoundError, StoreError

log = logging.getLogger("xalign.service")

# Validation error types meaning "a string that is not valid Unicode" (a lone surrogate, which JSON allows):
# ours (service.limits) and pydantic's own, raised first by length-constrained strings. Both answer 400.
INVALID_UNICODE = "invalid_unicode"
_UNICODE_ERRORS = frozenset({INVALID_UNICODE, "string_unicode"})
# A field name in a validation error's location; other str parts are union-member tags ("TextsSide", "list[...]").
_FIELD = re.compile(r"[a-z_][a-z0-9_]*")


class ServiceError(Exception):
    """Base of the errors a route may raise; ``param`` names the request field at fault, ``code`` what went wrong."""

    def __init__(self, message: str, param: str | None = None, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code or default_code(type(self))


class InvalidRequestError(ServiceError):
    """A malformed request (not JSON, text that is not valid Unicode) or one asking for something impossible."""


class AuthenticationError(ServiceError):
    """No API key, or an unknown one."""


class PermissionDeniedError(ServiceError):
    """The key is valid but lacks the scope the route needs."""


class NotFoundError(ServiceError):
    """Unknown model, version, alias, index or route."""


class ConflictError(ServiceError):
    """The resource exists already or is in a state that forbids the request."""


class PayloadTooLargeError(ServiceError):
    """Too many inputs, too long an input, or too large a body."""


class UnprocessableError(ServiceError):
    """A parameter is valid JSON but not acceptable (wrong type, out of range)."""


class OverloadedError(ServiceError):
    """The queue is full; retry after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int = 1, *, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class NotReadyError(ServiceError):
    """No model is loaded yet, or the service is shutting down."""


class QueueTimeoutError(OverloadedError):
    """Admitted work could not start within the queue deadline (503 with Retry-After)."""


# The status table: the only place that maps errors to HTTP statuses and error types.
STATUS: dict[type[ServiceError], tuple[int, str]] = {
    InvalidRequestError: (400, "invalid_request_error"),
    AuthenticationError: (401, "authentication_error"),
    PermissionDeniedError: (403, "permission_error"),
    NotFoundError: (404, "not_found_error"),
    ConflictError: (409, "conflict_error"),
    PayloadTooLargeError: (413, "payload_too_large"),
    UnprocessableError: (422, "validation_error"),
    OverloadedError: (429, "rate_limit_error"),
    NotReadyError: (503, "service_unavailable"),
    QueueTimeoutError: (503, "service_unavailable"),
}
# Each class's code when a raise site names no more specific one (``NotFoundError(..., code="model_not_found")``).
DEFAULT_CODES: dict[type[ServiceError], str] = {
    InvalidRequestError: "invalid_request",
    AuthenticationError: "invalid_api_key",
    PermissionDeniedError: "insufficient_scope",
    NotFoundError: "not_found",
    ConflictError: "conflict",
    PayloadTooLargeError: "payload_too_large",
    UnprocessableError: "invalid_parameter",
    OverloadedError: "queue_full",
    NotReadyError: "not_ready",
    QueueTimeoutError: "queue_timeout",
}


def default_code(cls: type[ServiceError]) -> str:
    """The code of ``cls`` (its nearest class in ``DEFAULT_CODES``); ``internal_error`` for the bare base."""
    return next((DEFAULT_CODES[c] for c in cls.__mro__ if c in DEFAULT_CODES), "internal_error")


# Codes of errors no route raises: what the framework, the middleware and the validation of bodies answer.
INVALID_JSON = "invalid_json"
VALIDATION_FAILED = "validation_failed"
ROUTE_NOT_FOUND = "route_not_found"
METHOD_NOT_ALLOWED = "method_not_allowed"
INTERNAL_ERROR = "internal_error"
_HTTP_CODES = {404: ROUTE_NOT_FOUND, 405: METHOD_NOT_ALLOWED}
# Codes that raise sites in several modules share (a raise site's own code is written where it is raised).
MODEL_NOT_FOUND = "model_not_found"  # no such model in the store, or not served
VERSION_NOT_FOUND = "model_version_not_found"  # the model exists; that version or alias does not, or is not served
INVALID_NAME = "invalid_name"  # a model, index or alias name breaking the naming rules
TOO_MANY_INPUTS = "too_many_inputs"
INPUT_TOO_LONG = "input_too_long"  # a text past the characters or tokens it may have


class ErrorDetail(BaseModel):
    """What went wrong: the kind (one per status), a stable code, a message for people, the field at fault if any."""

    type: str = Field(description="invalid_request_error, validation_error, not_found_error, ... (one per status)")
    code: str = Field(
        description="what went wrong, stable and snake_case, for programs to branch on: model_not_found, "
        "input_too_long, too_many_inputs, queue_full, invalid_api_key, insufficient_scope, validation_failed, "
        "internal_error, ..."
    )
    message: str
    param: str | None = Field(description="the request field at fault (dotted path), or null")


class ErrorBody(BaseModel):
    """The one body of every non-2xx response."""

    error: ErrorDetail


def error_body(
    error_type: str, message: str, param: str | None = None, *, code: str
) -> dict[str, dict[str, str | None]]:
    """The one error body of every non-2xx response."""
    return {"error": {"type": error_type, "code": code, "message": message, "param": param}}


def _status_of(exc: ServiceError) -> tuple[int, str]:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500, "internal_error"


def from_store_error(exc: StoreError, param: str = "model") -> ServiceError:
    """The service error a model-store error means to a client; ``param`` names the field holding the reference."""
    if isinstance(exc, ModelNotFoundError):
        return NotFoundError(str(exc), param, code=MODEL_NOT_FOUND)
    if isinstance(exc, ReferenceNotFoundError):
        return NotFoundError(str(exc), param, code=VERSION_NOT_FOUND)
    if isinstance(exc, InvalidNameError):
        return UnprocessableError(str(exc), param, code=INVALID_NAME)  # 422 naming the rule the name breaks
    return NotReadyError(
        "the requested model version failed verification; see the server log", code="model_verification_failed"
    )


async def _service_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    status, kind = _status_of(exc)
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, OverloadedError) else None
    return JSONResponse(error_body(kind, exc.message, exc.param, code=exc.code), status_code=status, headers=headers)


async def _store_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StoreError)
    return await _service_error(request, from_store_error(exc))


def _field_path(loc: Sequence[int | str]) -> tuple[str | None, str]:
    """(param, shown) of a validation error's location: ``src.texts`` and ``src.texts[3]``."""
    parts = list(loc[1:] if loc and loc[0] in ("body", "path", "query") else loc)
    if parts[-1:] == ["[key]"]:
        parts = parts[:-2]  # a mapping key at fault: name the mapping, never echo the client's key
    names = [p for p in parts if isinstance(p, str) and _FIELD.fullmatch(p)]
    shown = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts if isinstance(p, int) or p in names)
    return (".".join(names) or None), (shown.lstrip(".") or "body")


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    if first.get("type") == "json_invalid":
        # Not JSON at all is a malformed request (400), not a JSON value of the wrong shape (422).
        message = f"body is not valid JSON: {first.get('msg', 'invalid value')}"
        return JSONResponse(error_body("invalid_request_error", message, code=INVALID_JSON), status_code=400)
    unicode = next((e for e in errors if e.get("type") in _UNICODE_ERRORS), None)
    if unicode is not None:
        # Malformed text (400), like malformed JSON; reported before any other error of the same body.
        param, shown = _field_path(unicode["loc"])
        message = f"{shown} is not valid Unicode (a lone surrogate \\ud800-\\udfff): send UTF-8 text"
        return JSONResponse(error_body("invalid_request_error", message, param, code=INVALID_UNICODE), status_code=400)
    param, shown = _field_path(first.get("loc", ()))
    message = f"{shown}: {first.get('msg', 'invalid value')}"
    return JSONResponse(error_body("validation_error", message, param, code=VALIDATION_FAILED), status_code=422)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    kind = {404: "not_found_error", 405: "invalid_request_error"}.get(exc.status_code, "invalid_request_error")
    code = _HTTP_CODES.get(exc.status_code, "invalid_request")
    return JSONResponse(error_body(kind, str(exc.detail), code=code), status_code=exc.status_code, headers=exc.headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(error_body("internal_error", "internal server error", code=INTERNAL_ERROR), status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    """Route every error through the one body and the one table."""
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(StoreError, _store_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
