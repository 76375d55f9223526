"""API keys with two scopes: ``read`` (embed, mine, search) and ``admin`` (reload models, change indexes).

Keys come as ``Authorization: Bearer KEY`` (what OpenAI clients send) or ``X-API-Key: KEY``.
A scope with no keys configured is open, so a loopback deployment needs no set-up; admin keys
also grant read.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from service.dependencies import SettingsDep
from service.errors import AuthenticationError, PermissionDeniedError


def presented_key(request: Request) -> str | None:
    """The key a request carries, if any."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.headers.get("x-api-key") or None


def _matches(key: str, keys: list[str]) -> bool:
    # Constant-time comparison against every key, so timing does not reveal a prefix.
    return any(hmac.compare_digest(key.encode(), k.encode()) for k in keys)


async def require_read(request: Request, settings: SettingsDep) -> None:
    """Allow the request if read is open or the key has read or admin scope."""
    if not settings.api_keys:
        return
    key = presented_key(request)
    if key is None:
        raise AuthenticationError("an API key is required (Authorization: Bearer KEY)")
    if not _matches(key, settings.api_keys) and not _matches(key, settings.admin_api_keys):
        raise AuthenticationError("unknown API key")


async def require_admin(request: Request, settings: SettingsDep) -> None:
    """Allow the request if admin is open or the key has admin scope."""
    if not settings.admin_api_keys:
        return
    key = presented_key(request)
    if key is None:
        raise AuthenticationError("an admin API key is required (Authorization: Bearer KEY)")
    if _matches(key, settings.admin_api_keys):
        return
    if _matches(key, settings.api_keys):
        raise PermissionDeniedError("this key has read scope only; the route needs admin scope")
    raise AuthenticationError("unknown API key")


ReadAccess = Annotated[None, Depends(require_read)]
AdminAccess = Annotated[None, Depends(require_admin)]
