"""The table of scopes: which key every route needs. The one place it is written (README.md shows it).

- ``public``: never needs a key (probes, the OpenAPI schema and its pages).
- ``read``: needs a read or admin key once ``api_keys`` is set; open while it is empty.
- ``admin``: changes state. Open only while no key of any kind is configured; with read keys and no admin
  keys it is closed to everyone (403 naming ``XALIGN_ADMIN_API_KEYS``); else it needs an admin key.

A route missing from the table is treated as ``admin`` (closed by default) and fails the route-table test.
"""

from __future__ import annotations

from enum import StrEnum


class Scope(StrEnum):
    """What a route needs."""

    PUBLIC = "public"
    READ = "read"
    ADMIN = "admin"


# (method, path template as the app declares it) → scope.
ROUTE_SCOPES: dict[tuple[str, str], Scope] = {
    ("GET", "/health"): Scope.PUBLIC,
    ("GET", "/ready"): Scope.PUBLIC,
    ("GET", "/openapi.json"): Scope.PUBLIC,
    ("GET", "/docs"): Scope.PUBLIC,
    ("GET", "/docs/oauth2-redirect"): Scope.PUBLIC,
    ("GET", "/redoc"): Scope.PUBLIC,
    # The web page is static files; what it shows comes from the API routes below, with the key typed into it.
    ("GET", "/ui"): Scope.PUBLIC,
    # Declared as /ui/{path:path}; FastAPI's template (path_format) drops the convertor.
    ("GET", "/ui/{path}"): Scope.PUBLIC,
    ("GET", "/metrics"): Scope.READ,
    ("GET", "/v1/models"): Scope.READ,
    ("GET", "/v1/models/{model_id}"): Scope.READ,
    ("POST", "/v1/embeddings"): Scope.READ,
    ("POST", "/v1/tokenize"): Scope.READ,
    ("POST", "/v1/similarity"): Scope.READ,
    ("POST", "/v1/rerank"): Scope.READ,
    ("POST", "/v1/senses"): Scope.READ,
    ("POST", "/v1/bitext/mine"): Scope.READ,
    # Jobs are mining, a read capability: they change no state other routes serve (models, indexes), only the
    # caller's own results; a read key that may mine synchronously may mine in the background, poll and cancel.
    ("POST", "/v1/bitext/jobs"): Scope.READ,
    ("GET", "/v1/bitext/jobs"): Scope.READ,
    ("GET", "/v1/bitext/jobs/{job_id}"): Scope.READ,
    ("GET", "/v1/bitext/jobs/{job_id}/pairs"): Scope.READ,
    ("DELETE", "/v1/bitext/jobs/{job_id}"): Scope.READ,
    ("GET", "/v1/indexes"): Scope.READ,
    ("GET", "/v1/indexes/{name}"): Scope.READ,
    ("POST", "/v1/indexes/{name}/search"): Scope.READ,
    ("POST", "/v1/models/{name}/reload"): Scope.ADMIN,
    ("POST", "/v1/models/{name}/promote"): Scope.ADMIN,
    ("POST", "/v1/models/{name}/rollback"): Scope.ADMIN,
    ("POST", "/v1/indexes"): Scope.ADMIN,
    ("POST", "/v1/indexes/{name}/texts"): Scope.ADMIN,
    ("DELETE", "/v1/indexes/{name}"): Scope.ADMIN,
}


def scope_of(method: str, path: str) -> Scope:
    """The scope of a route (``HEAD`` is ``GET``); a route missing from the table needs ``admin``."""
    method = "GET" if method == "HEAD" else method
    return ROUTE_SCOPES.get((method, path), Scope.ADMIN)


def markdown_table() -> str:
    """The table as README.md shows it: one row per route, in the table's order."""
    rows = [f"| `{method} {path}` | {scope} |" for (method, path), scope in ROUTE_SCOPES.items()]
    return "\n".join(["| route | scope |", "|---|---|", *rows])
