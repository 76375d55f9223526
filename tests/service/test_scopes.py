"""Every route of the app x four key configurations x five callers answers as the table of scopes says.

The routes come from the app's own route table, so a route added later is covered without editing this
test; a route missing from ``service.scopes.ROUTE_SCOPES`` fails it. The expected outcome of each
(scope, configuration, caller) is written out below by hand, not recomputed from the code under test.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import fastapi.routing
import pytest
from error_body import assert_error_body
from fastapi import FastAPI
from fastapi.testclient import TestClient

from xalign.service.app import create_app
from xalign.service.scopes import ROUTE_SCOPES, markdown_table
from xalign.service.settings import Settings

READ, ADMIN = "read-key-1", "admin-key-1"
README = Path(__file__).parents[2] / "README.md"

# Key configurations: (api_keys, admin_api_keys).
CONFIGS: dict[str, tuple[list[str], list[str]]] = {
    "no keys": ([], []),
    "read only": ([READ], []),
    "admin only": ([], [ADMIN]),
    "both": ([READ], [ADMIN]),
}
# Callers: the headers they send. A key of a scope that is not configured is just an unknown key.
CALLERS: dict[str, dict[str, str]] = {
    "no key": {},
    "wrong key": {"Authorization": "Bearer not-a-key"},
    "read key": {"Authorization": f"Bearer {READ}"},
    "admin key": {"Authorization": f"Bearer {ADMIN}"},
    "admin X-API-Key": {"X-API-Key": ADMIN},
}
# (type, code) of a refusal before the route: no key, an unknown key, a key without the scope, admin closed.
AUTH_ERRORS = {
    ("authentication_error", "missing_api_key"),
    ("authentication_error", "invalid_api_key"),
    ("permission_error", "insufficient_scope"),
    ("permission_error", "admin_routes_closed"),
}
OK = "ok"  # reaches the route: any status but 401 and 403
# (scope, configuration) → outcome per caller, in the order of CALLERS.
EXPECTED: dict[tuple[str, str], tuple[int | str, ...]] = {
    ("public", "no keys"): (OK, OK, OK, OK, OK),
    ("public", "read only"): (OK, OK, OK, OK, OK),
    ("public", "admin only"): (OK, OK, OK, OK, OK),
    ("public", "both"): (OK, OK, OK, OK, OK),
    ("read", "no keys"): (OK, OK, OK, OK, OK),
    ("read", "read only"): (401, 401, OK, 401, 401),
    ("read", "admin only"): (OK, OK, OK, OK, OK),
    ("read", "both"): (401, 401, OK, OK, OK),
    ("admin", "no keys"): (OK, OK, OK, OK, OK),
    ("admin", "read only"): (403, 403, 403, 403, 403),
    ("admin", "admin only"): (401, 401, 401, OK, OK),
    ("admin", "both"): (401, 401, 403, OK, OK),
}
# Bodies that let a call reach its route's work; any other route gets {} (a 422 still counts as reached).
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/v1/embeddings"): {"input": "hello"},
    ("POST", "/v1/senses"): {"input": "hello"},
    ("POST", "/v1/bitext/mine"): {"src": {"texts": ["a"]}, "tgt": {"texts": ["b"]}},
    ("POST", "/v1/indexes"): {"name": "tiny", "model": "tiny"},
    ("POST", "/v1/indexes/{name}/texts"): {"texts": ["hello"]},
    ("POST", "/v1/indexes/{name}/search"): {"query": "hello"},
    ("POST", "/v1/tokenize"): {"input": "hello"},
    ("POST", "/v1/similarity"): {"pairs": [["hello", "hallo"]]},
    ("POST", "/v1/rerank"): {"query": "hello", "documents": ["hallo", "world"]},
    # The store is shared and read-only: the admin routes reach the store and change nothing (404s).
    ("POST", "/v1/models/{name}/promote"): {"version": 99},
    ("POST", "/v1/models/{name}/rollback"): {"alias": "never-set"},
}
# Path parameters: the tiny model and an index named after it, a mining job id that no job has, a UI file.
PATH_VALUES = {"name": "tiny", "model_id": "tiny", "job_id": "0" * 32, "path": "index.html"}
CASES_RUN: list[int] = []


def app_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path template) of every route the app serves (HEAD is GET's)."""
    # Newer FastAPI nests included routers in app.routes; iter_route_contexts flattens them.
    flatten = getattr(fastapi.routing, "iter_route_contexts", None)
    routes: Iterable[Any] = flatten(app.routes) if flatten is not None else app.routes
    return [
        (method, route.path_format)
        for route in routes
        for method in sorted(getattr(route, "methods", None) or ())
        if method != "HEAD"
    ]


@pytest.fixture(scope="module")
def routes(tiny_store: Path) -> list[tuple[str, str]]:
    return app_routes(create_app(Settings(store=tiny_store)))


def test_every_route_is_in_the_table_and_nothing_else(routes: list[tuple[str, str]]) -> None:
    missing = [r for r in routes if r not in ROUTE_SCOPES]
    assert not missing, f"routes without a scope in service/scopes.py: {missing}"
    assert not [r for r in ROUTE_SCOPES if r not in routes], "the table names a route the app does not have"


def test_readme_shows_the_table() -> None:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"\| route \| scope \|\n(?:\|.*\|\n)+", text)
    assert match is not None, "README.md has no '| route | scope |' table"
    assert match.group(0).strip() == markdown_table(), "README's scope table differs from service/scopes.py"


@pytest.fixture(params=list(CONFIGS), scope="module")
def configured(
    request: pytest.FixtureRequest, tiny_store: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, TestClient]]:
    read, admin = CONFIGS[request.param]
    data = tmp_path_factory.mktemp("scopes-data")
    settings = Settings(
        store=tiny_store, threads=1, api_keys=read, admin_api_keys=admin, poll_interval_s=0, data_dir=data
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield request.param, client


def _outcome(status: int) -> int | str:
    return status if status in (401, 403) else OK


def test_every_route_every_caller(configured: tuple[str, TestClient], routes: list[tuple[str, str]]) -> None:
    config, client = configured
    wrong = []
    for method, path in routes:
        scope = ROUTE_SCOPES[(method, path)]
        url = path.format(**PATH_VALUES)
        for caller, expected in zip(CALLERS, EXPECTED[(str(scope), config)], strict=True):
            body = BODIES.get((method, path), {}) if method in ("POST", "PUT", "PATCH") else None
            response = client.request(method, url, json=body, headers=CALLERS[caller])
            CASES_RUN.append(1)
            if _outcome(response.status_code) != expected:
                wrong.append(f"{method} {path} ({scope}) {caller}: {response.status_code}, expected {expected}")
            elif expected in (401, 403):
                error = assert_error_body(response.json())
                assert (error["type"], error["code"]) in AUTH_ERRORS, error
    assert not wrong, "\n".join(wrong)


def test_cases_ran(routes: list[tuple[str, str]]) -> None:
    """Runs after the matrix (file order): every (route, configuration, caller) was tried."""
    assert sum(CASES_RUN) == len(routes) * len(CONFIGS) * len(CALLERS)
    print(
        f"\nauth cases run: {sum(CASES_RUN)} ({len(routes)} routes x {len(CONFIGS)} configs x {len(CALLERS)} callers)"
    )
