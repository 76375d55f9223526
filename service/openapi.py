"""The OpenAPI schema tells the truth: every operation lists the error statuses it can answer, with the one body.

Statuses come from one table (``errors.STATUS``) and from what a route is made of, so no route lists them by
hand: its scope (``service.scopes``: read → 401, admin → 401/403), its body (400 not JSON or not valid Unicode,
413 too large, 422), its path and query parameters (422), plus the errors the route raises itself, declared
with :func:`error_responses` in its decorator. Every route may answer 500. Declaring 422 ourselves also keeps
FastAPI from documenting its ``HTTPValidationError`` (``{"detail": [...]}``), which the service never sends.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic.json_schema import models_json_schema

from xalign.service.errors import (
    STATUS,
    AuthenticationError,
    ErrorBody,
    InvalidRequestError,
    NotFoundError,
    NotReadyError,
    OverloadedError,
    PayloadTooLargeError,
    PermissionDeniedError,
    ServiceError,
    UnprocessableError,
)
from xalign.service.scopes import Scope, scope_of

INTERNAL = "500"
INTERNAL_DESCRIPTION = "Unexpected error; the log has its cause (by request id)."
REF_TEMPLATE = "#/components/schemas/{model}"
ERROR_BODY_REF = REF_TEMPLATE.format(model=ErrorBody.__name__)

# What each scope can answer before the route runs.
_BY_SCOPE: dict[Scope, tuple[type[ServiceError], ...]] = {
    Scope.PUBLIC: (),
    Scope.READ: (AuthenticationError,),
    Scope.ADMIN: (AuthenticationError, PermissionDeniedError),
}
# A JSON body: not JSON or not valid Unicode (400), past the body or a text limit (413), wrong shape (422).
_BODY = (InvalidRequestError, PayloadTooLargeError, UnprocessableError)
_PARAMS = (UnprocessableError,)

# What routes do, for their decorators: a model named by reference (422 a name breaking the naming rules,
# 404 not served, 503 none loaded or it failed verification); texts queued for inference (429 queue full,
# 503 not started in time).
USES_MODEL = (UnprocessableError, NotFoundError, NotReadyError)
EMBEDS = (*USES_MODEL, OverloadedError)
# A resource named in the path: 422 for a name that breaks the naming rules, 404 for an unknown one.
NAMED = (UnprocessableError, NotFoundError)


def _status(error: type[ServiceError]) -> int:
    return next(STATUS[cls][0] for cls in error.__mro__ if cls in STATUS)


def error_responses(*errors: type[ServiceError]) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for ``errors``: each one's status from the table, described by the errors sharing it."""
    described: dict[int, list[str]] = {}
    for error in errors:
        doc = (error.__doc__ or error.__name__).strip().splitlines()[0]
        described.setdefault(_status(error), []).append(doc)
    return {
        status: {"model": ErrorBody, "description": " ".join(dict.fromkeys(docs))} for status, docs in described.items()
    }


def implied_errors(method: str, path: str, operation: dict[str, Any]) -> tuple[type[ServiceError], ...]:
    """The errors an operation can answer by what it is made of: its scope, its body, its parameters."""
    errors = list(_BY_SCOPE[scope_of(method.upper(), path)])
    if "requestBody" in operation:
        errors += _BODY
    if operation.get("parameters"):
        errors += _PARAMS
    return tuple(errors)


def _descriptions(errors: tuple[type[ServiceError], ...]) -> dict[str, str]:
    return {str(status): response["description"] for status, response in error_responses(*errors).items()}


def _document(document: dict[str, Any]) -> None:
    """Give every operation its implied errors and 500, every error the one body; drop FastAPI's 422 body."""
    body = {"application/json": {"schema": {"$ref": ERROR_BODY_REF}}}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            implied = _descriptions(implied_errors(method, path, operation)) | {INTERNAL: INTERNAL_DESCRIPTION}
            for status, description in implied.items():
                entry = responses.setdefault(status, {"description": description})
                if entry.get("content") != body:  # FastAPI's own 422 (HTTPValidationError) says nothing true
                    entry["description"] = description
                elif description not in entry["description"]:
                    entry["description"] = f"{entry['description']} {description}"
            for status, entry in responses.items():
                if int(status) >= 400:
                    entry["content"] = body
            operation["responses"] = dict(sorted(responses.items()))
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    _, definitions = models_json_schema([(ErrorBody, "serialization")], ref_template=REF_TEMPLATE)
    for name, schema in definitions["$defs"].items():
        schemas.setdefault(name, schema)


def document_errors(app: FastAPI) -> None:
    """Make ``app.openapi()`` document every operation's errors (built once, on the first request for it)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _document(build())  # FastAPI caches what it builds in app.openapi_schema; completed in place
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]
