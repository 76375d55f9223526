"""One exception tree mirroring the service's (``service/errors.py``): a class per status, the error body's fields.

Every error the client raises is an :class:`XAlignError`::

    try:
        client.models.get("no-such-model")
    except NotFoundError as exc:
        print(exc.status, exc.code, exc.request_id)  # 404 model_not_found 3f2a...

Connection failures and timeouts are :class:`APIConnectionError` / :class:`APITimeoutError` (no status).
"""

from __future__ import annotations

import email.utils
import time
from typing import Any

import httpx

REQUEST_ID_HEADER = "x-request-id"


class XAlignError(Exception):
    """Base of every client error: the error body's ``type``, ``code``, ``message``, ``param`` and the request id.

    ``status`` is the HTTP status, or ``None`` where no response came (connection errors, timeouts).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message, self.status, self.type = message, status, type
        self.code, self.param, self.request_id = code, param, request_id

    def __str__(self) -> str:
        where = f" (param {self.param})" if self.param else ""
        status = f"{self.status} " if self.status is not None else ""
        code = f"[{self.code}] " if self.code else ""
        request = f" [request {self.request_id}]" if self.request_id else ""
        return f"{status}{code}{self.message}{where}{request}"


class APIConnectionError(XAlignError):
    """No response: the connection failed or broke (the cause is chained)."""


class APITimeoutError(APIConnectionError):
    """No response within the client's timeout."""


class APIStatusError(XAlignError):
    """The service answered a non-2xx status; subclasses name the statuses the service uses."""

    status: int


class BadRequestError(APIStatusError):
    """400: a malformed request (not JSON, invalid Unicode) or one asking for something impossible."""


class AuthenticationError(APIStatusError):
    """401: no API key, or an unknown one."""


class PermissionDeniedError(APIStatusError):
    """403: the key lacks the scope the route needs (admin routes)."""


class NotFoundError(APIStatusError):
    """404: unknown model, version, alias, index, job or route."""


class ConflictError(APIStatusError):
    """409: the resource exists already or is in a state that forbids the request."""


class PayloadTooLargeError(APIStatusError):
    """413: too many inputs, too long an input, or too large a body."""


class UnprocessableEntityError(APIStatusError):
    """422: valid JSON but an unacceptable value (the ``param`` names it)."""


class RetryableStatusError(APIStatusError):
    """A status the client retries (429, 503); ``retry_after`` is the server's advice in seconds, if any."""

    def __init__(self, message: str, *, retry_after: float | None = None, **fields: Any) -> None:
        super().__init__(message, **fields)
        self.retry_after = retry_after


class RateLimitError(RetryableStatusError):
    """429: the model's queue is full (or the job queue); retried by the client, honouring Retry-After."""


class ServiceUnavailableError(RetryableStatusError):
    """503: no model loaded yet, shutting down, or queued work could not start in time; retried by the client."""


class InternalServerError(APIStatusError):
    """5xx other than 503: the service failed; its log has the cause under the request id."""


class JobWaitTimeoutError(XAlignError, TimeoutError):
    """``jobs.wait`` gave up: the job had not finished within ``timeout`` seconds (it keeps running)."""


STATUS_ERRORS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: UnprocessableEntityError,
    429: RateLimitError,
    503: ServiceUnavailableError,
}


def retry_after_seconds(response: httpx.Response) -> float | None:
    """The ``Retry-After`` header in seconds (a number, or an HTTP date), or ``None`` if absent or unreadable."""
    raw = response.headers.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _detail(response: httpx.Response) -> dict[str, Any]:
    """The body's ``error`` object; a body of another shape (a proxy's page) gives its text as the message."""
    try:
        body = response.json()
    except ValueError:
        body = None
    detail = body.get("error") if isinstance(body, dict) else None
    if isinstance(detail, dict):
        return detail
    text = response.text.strip()[:500]
    return {"message": text or response.reason_phrase or f"HTTP {response.status_code}"}


def error_from_response(response: httpx.Response) -> APIStatusError:
    """The exception a non-2xx response means (the body must have been read)."""
    detail = _detail(response)
    status = response.status_code
    cls = STATUS_ERRORS.get(status, InternalServerError if status >= 500 else APIStatusError)
    fields: dict[str, Any] = {
        "status": status,
        "type": _text(detail.get("type")),
        "code": _text(detail.get("code")),
        "param": _text(detail.get("param")),
        "request_id": response.headers.get(REQUEST_ID_HEADER),
    }
    if issubclass(cls, RetryableStatusError):
        fields["retry_after"] = retry_after_seconds(response)
    return cls(_text(detail.get("message")) or f"HTTP {status}", **fields)


def connection_error(exc: httpx.TransportError, request_id: str) -> APIConnectionError:
    """The client's error for a transport failure (a timeout is :class:`APITimeoutError`)."""
    cls = APITimeoutError if isinstance(exc, httpx.TimeoutException) else APIConnectionError
    kind = "timed out" if cls is APITimeoutError else "failed"
    return cls(f"request {kind}: {type(exc).__name__}: {exc}", request_id=request_id)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
