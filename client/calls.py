"""A call: one API request described without I/O (method, path, body, how to read the answer).

The API modules (``client/models_api.py``, ``client/texts_api.py``, ...) build calls; the sync and async runners
(``client/sync_runner.py``, ``client/async_runner.py``) send them, so each request is written once.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
import pydantic

from xalign.client.errors import REQUEST_ID_HEADER, XAlignError

T = TypeVar("T")
M = TypeVar("M", bound=pydantic.BaseModel)
Builder = Callable[..., httpx.Request]


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request and the parser of its successful response.

    ``idempotent`` says whether a connection error may be retried (the request may have done its work already):
    reads and pure computations are, calls that change state (create, add, promote, delete) are not.
    """

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    json: Mapping[str, Any] | None = None
    params: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    idempotent: bool = True

    def request(self, build: Builder) -> httpx.Request:
        """The request, built by an httpx client's ``build_request``, with a fresh ``X-Request-Id``.

        Retries resend this same request, so the service logs every attempt under one id.
        """
        headers = {REQUEST_ID_HEADER: uuid.uuid4().hex, **self.headers}
        return build(self.method, self.path, json=self.json, params=self.params, headers=headers)


def body(**fields: Any) -> dict[str, Any]:
    """A request body of the fields that are not ``None`` (the service applies its defaults to the others)."""
    return {name: value for name, value in fields.items() if value is not None}


def segment(value: str) -> str:
    """``value`` as one path segment (a model reference keeps ``:`` and ``@``; ``/``, ``?`` are escaped)."""
    return quote(value, safe=":@")


def parsed(model: type[M]) -> Callable[[httpx.Response], M]:
    """A parser validating the JSON body as ``model``."""

    def parse(response: httpx.Response) -> M:
        return validated(model, decoded(response.text), response.headers.get(REQUEST_ID_HEADER))

    return parse


def decoded(text: str) -> Any:
    """A JSON document; text that is not JSON (a proxy's page) is validated as ``None`` and so reported."""
    try:
        return json.loads(text)
    except ValueError:
        return None


def validated(model: type[M], data: Any, request_id: str | None) -> M:
    """``data`` as ``model``; data of another shape is an :class:`XAlignError` naming the request id."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        raise XAlignError(
            f"unexpected response for {model.__name__}: {exc.error_count()} error(s), first at {first['loc']}: "
            f"{first['msg']}",
            type="invalid_response",
            request_id=request_id,
        ) from exc
