"""API keys with two scopes, ``read`` and ``admin``, checked for every route against ``service.scopes``.

Keys come as ``Authorization: Bearer KEY`` (what OpenAI clients send) or ``X-API-Key: KEY``.
With no key configured everything is open, so a loopback deployment needs no set-up. Once any key is
configured, no route that changes state is open: admin routes need an admin key, and with read keys but
no admin keys they are closed to everyone. Admin keys also grant read. One app-wide dependency
(:func:`authorize`) looks the route up in the table, so a route cannot forget its check.
"""

from __future__ import annotations

import hmac
import logging

from fastapi import Request

from xalign.service.dependencies import SettingsDep
from xalign.service.errors import AuthenticationError, PermissionDeniedError
from xalign.service.scopes import Scope, scope_of
from xalign.service.settings import Settings, env_name

log = logging.getLogger("xalign.service")
# No key at all (401); an unknown key is AuthenticationError's default ``invalid_api_key``, a key without the
# route's scope PermissionDeniedError's ``insufficient_scope``.
MISSING_API_KEY = "missing_api_key"


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


def check_read(key: str | None, settings: Settings) -> None:
    """Pass if read is open (no read keys) or ``key`` has read or admin scope; else 401."""
    if not settings.api_keys:
        return
    if key is None:
        raise AuthenticationError("an API key is required (Authorization: Bearer KEY)", code=MISSING_API_KEY)
    if not _matches(key, settings.api_keys) and not _matches(key, settings.admin_api_keys):
        raise AuthenticationError("unknown API key")


def check_admin(key: str | None, settings: Settings) -> None:
    """Pass if no key of any kind is configured or ``key`` has admin scope; else 401 or 403."""
    if not settings.admin_api_keys:
        if not settings.api_keys:
            return
        raise PermissionDeniedError(
            f"admin routes are closed: read keys are set but no admin key; set {env_name('admin_api_keys')}",
            code="admin_routes_closed",
        )
    if key is None:
        raise AuthenticationError("an admin API key is required (Authorization: Bearer KEY)", code=MISSING_API_KEY)
    if _matches(key, settings.admin_api_keys):
        return
    if _matches(key, settings.api_keys):
        raise PermissionDeniedError("this key has read scope only; the route needs admin scope")
    raise AuthenticationError("unknown API key")


def route_scope(request: Request) -> Scope:
    """The scope of the route this request matched (``admin`` if it is not in the table)."""
    # FastAPI puts the matched route in the scope; its template (``/v1/indexes/{name}``) is the table's key.
    path = getattr(request.scope.get("route"), "path_format", None)
    return scope_of(request.method, path) if isinstance(path, str) else Scope.ADMIN


async def authorize(request: Request, settings: SettingsDep) -> None:
    """App-wide dependency: the presented key must grant the scope the table gives the route."""
    scope = route_scope(request)
    if scope is Scope.READ:
        check_read(presented_key(request), settings)
    elif scope is Scope.ADMIN:
        check_admin(presented_key(request), settings)


def log_key_configuration(settings: Settings) -> None:
    """Say once at start which scopes a half-configured set of keys leaves closed or open."""
    read, admin = env_name("api_keys"), env_name("admin_api_keys")
    if settings.api_keys and not settings.admin_api_keys:
        log.warning(
            "%s is set and %s is not: admin routes (reload, index changes) answer 403 to everyone; set %s to use them",
            read, admin, admin,
        )  # fmt: skip
    elif settings.admin_api_keys and not settings.api_keys:
        log.warning(
            "SECURITY: %s is set and %s is not: every read route (embeddings, mining, search, /v1/models, "
            "/metrics) answers ANYONE without a key; set %s unless this port is reachable only by trusted clients",
            admin, read, read,
        )  # fmt: skip
