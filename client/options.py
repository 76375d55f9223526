"""What both clients are configured with: the base URL, the key (argument or ``XALIGN_API_KEY``), timeouts, retries."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, TypedDict, Unpack

import httpx

from xalign.client.retries import RetryPolicy

API_KEY_ENV = "XALIGN_API_KEY"
# Long enough for a synchronous mining request; connecting should never take long.
DEFAULT_TIMEOUT = httpx.Timeout(120.0, connect=10.0)


def _user_agent() -> str:
    try:
        version = metadata.version("xalign")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return f"xalign-client/{version}"


@dataclass(frozen=True)
class ClientOptions:
    """A client's settings, resolved once by :func:`client_options`."""

    base_url: str
    api_key: str | None
    timeout: httpx.Timeout
    retry: RetryPolicy
    headers: Mapping[str, str] = field(default_factory=dict)

    def http_settings(self) -> dict[str, Any]:
        """Keyword arguments of ``httpx.Client`` / ``httpx.AsyncClient``: base URL, timeout, headers, key."""
        headers = {"user-agent": _user_agent(), "accept": "application/json", **self.headers}
        if self.api_key:
            # What the service reads first (``service/auth.py``), and what OpenAI clients send.
            headers["authorization"] = f"Bearer {self.api_key}"
        return {"base_url": self.base_url, "timeout": self.timeout, "headers": headers}


class ClientSettings(TypedDict, total=False):
    """The constructors' keyword arguments besides the URL, key and transport (the same for both clients)."""

    timeout: float | httpx.Timeout | None  # seconds, or an httpx.Timeout; default 120 s (10 s to connect)
    max_retries: int  # retries of 429, 503 and (idempotent calls only) connection errors; default 3
    headers: Mapping[str, str] | None  # sent with every request


def client_options(base_url: str, api_key: str | None, **settings: Unpack[ClientSettings]) -> ClientOptions:
    """Resolve the constructor's arguments; ``api_key=None`` reads ``XALIGN_API_KEY`` now (never at import)."""
    timeout, max_retries = settings.get("timeout"), settings.get("max_retries", 3)
    if max_retries < 0:
        raise ValueError(f"max_retries must be >= 0, got {max_retries}")
    key = (os.environ.get(API_KEY_ENV) or None) if api_key is None else api_key
    if timeout is None:
        resolved = DEFAULT_TIMEOUT
    else:
        resolved = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
    return ClientOptions(
        base_url=_root(base_url),
        api_key=key,
        timeout=resolved,
        retry=RetryPolicy(max_retries=max_retries),
        headers=dict(settings.get("headers") or {}),
    )


def _root(base_url: str) -> str:
    """The service's root URL: a trailing ``/`` or ``/v1`` (the OpenAI client's form) is dropped."""
    root = base_url.rstrip("/")
    return root.removesuffix("/v1")
