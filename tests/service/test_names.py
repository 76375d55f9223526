"""Bad model and index names: every route that takes one answers 422 naming the rule, over real HTTP, and
nothing outside (or inside) ``data_dir`` and the store is created or removed.

Path parameters go percent-encoded, as a client sends them. The server routes the decoded path, so a name
holding ``/`` (``%2F``) never reaches a route as one name: it answers 404 (no route) or lands on another
route with the segment before the slash as the name; either way nothing is touched. ``..`` and ``%2E%2E``
are not normalised away by uvicorn: they reach the route and get 422.
"""

from __future__ import annotations

import http.client
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pytest
from serving import real_server

from xalign.modelstore import InvalidNameError
from xalign.modelstore.names import MAX_NAME_LENGTH, RULES, broken_rule, validate_index_name, validate_name
from xalign.service.settings import Settings

# rule → names breaking it first; the same for models and indexes (except the index-only rule below).
BAD: dict[str, list[str]] = {
    "max-length": ["a" * (MAX_NAME_LENGTH + 1)],
    "no-control-characters": ["nul\x00x", "bell\x07", "tab\tx", "new\nline", "del\x7f"],
    "no-path-separator": ["../outside", "a/b", "a\\b", "..\\outside", "/abs"],
    "no-dot-dot": ["..", "a..b"],
    "no-leading-dot": [".hidden", ".x"],
    "no-trailing-dot": ["trail."],
    "charset": ["sp ace", "-dash", "semi;colon"],
}
INDEX_ONLY = {"lowercase": ["Upper", "mixedCase"]}
MODEL_BAD = [(rule, name) for rule, names in BAD.items() for name in names]
INDEX_BAD = MODEL_BAD + [(rule, name) for rule, names in INDEX_ONLY.items() for name in names]
# Raw path segments as a client could send them, decoded by the server before routing.
RAW_SEGMENTS = ["%2E%2E", "%2e%2e", "..%2Foutside", "%2E%2E%2Foutside", "a%2Fb", "a%5Cb", "nul%00x", "%2Ehidden"]
CASES: list[str] = []


def test_each_rule_is_named() -> None:
    for rule, names in {**BAD, **INDEX_ONLY}.items():
        for name in names:
            assert broken_rule(name, lowercase=True) == rule, name
            with pytest.raises(InvalidNameError, match=f"rule '{rule}'"):
                validate_index_name(name)
    assert broken_rule("") == "not-empty" and set(RULES) >= {*BAD, *INDEX_ONLY, "not-empty"}
    # Model names keep their case (existing stores hold such names); index names have one case.
    assert validate_name("E5.small_v2") == "E5.small_v2"
    assert validate_index_name("docs-v2.en_1") == "docs-v2.en_1"


@pytest.fixture(scope="module")
def root(tiny_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """store/, data/ and a neighbour outside/ that a traversal would reach."""
    root = tmp_path_factory.mktemp("names")
    shutil.copytree(tiny_store, root / "store")
    (root / "outside" / "victim").mkdir(parents=True)
    (root / "outside" / "victim" / "meta.json").write_text("{}")
    return root


@pytest.fixture(scope="module")
def port(root: Path) -> Iterator[int]:
    settings = Settings(store=root / "store", data_dir=root / "data", threads=1, poll_interval_s=0)
    with real_server(settings) as (_, server_port):
        yield server_port


def call(port: int, method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
    """One request with ``path`` sent exactly as given (already percent-encoded)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    payload = None if body is None else json.dumps(body).encode()
    connection.request(method, path, body=payload, headers={"content-type": "application/json"})
    response = connection.getresponse()
    status, raw = response.status, response.read()
    connection.close()
    CASES.append(f"{method} {path}")
    return status, json.loads(raw) if raw else {}


def tree(root: Path) -> set[str]:
    """Every file and folder under ``root``, relative."""
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def assert_rule(status: int, body: dict[str, Any], rule: str, where: str) -> None:
    assert status == 422, (where, status, body)
    # The naming rule (invalid_name), or the field cap of pydantic (validation_failed) for an over-long name.
    assert body["error"]["code"] in ("invalid_name", "validation_failed"), (where, body)
    message = body["error"]["message"]
    # The field cap (service.limits) may refuse an over-long name first; it names the limit.
    assert f"rule '{rule}'" in message or (rule == "max-length" and str(MAX_NAME_LENGTH) in message), (where, body)


def body_cases(name: str, field: str) -> list[tuple[str, Any]]:
    """(path, body) of every route with a body field holding an index name or a model reference."""
    if field == "index":
        return [
            ("/v1/indexes", {"name": name}),
            ("/v1/bitext/mine", {"src": {"index": name}, "tgt": {"texts": ["a"]}}),
            ("/v1/bitext/mine", {"src": {"texts": ["a"]}, "tgt": {"index": name}}),
        ]
    return [
        ("/v1/embeddings", {"input": "hello", "model": name}),
        ("/v1/senses", {"input": "hello", "model": name}),
        ("/v1/indexes", {"name": "made-by-bad-model", "model": name}),
        ("/v1/bitext/mine", {"src": {"texts": ["a"]}, "tgt": {"texts": ["b"]}, "model": name}),
    ]


INDEX_PATHS = [("GET", "/v1/indexes/{}"), ("DELETE", "/v1/indexes/{}"), ("POST", "/v1/indexes/{}/texts"),
               ("POST", "/v1/indexes/{}/search")]  # fmt: skip
MODEL_PATHS = [("POST", "/v1/models/{}/reload"), ("POST", "/v1/models/{}/promote"), ("POST", "/v1/models/{}/rollback"),
               ("GET", "/v1/models/{}")]  # fmt: skip
PATH_BODIES = {"texts": {"texts": ["hello"]}, "search": {"query": "hello"}, "promote": {"version": 1}, "rollback": {}}


def path_cases(segment: str, field: str) -> list[tuple[str, str, Any]]:
    """(method, path, body) of every route with a name in its path, ``segment`` already encoded."""
    routes = INDEX_PATHS if field == "index" else MODEL_PATHS
    return [(m, p.format(segment), PATH_BODIES.get(p.rsplit("/", 1)[-1])) for m, p in routes]


def test_bad_names_touch_nothing(root: Path, port: int) -> None:
    status, _ = call(port, "POST", "/v1/indexes", {"name": "good", "model": "tiny"})
    assert status == 201
    assert call(port, "POST", "/v1/indexes/good/texts", {"texts": ["kept"]})[0] == 200
    before = tree(root)
    for field, bad in (("index", INDEX_BAD), ("model", MODEL_BAD)):
        for rule, name in bad:
            for path, body in body_cases(name, field):
                assert_rule(*call(port, "POST", path, body), rule, f"{path} {name!r}")
            for method, path, body in path_cases(quote(name, safe=""), field):
                status, answer = call(port, method, path, body)
                if "/" in name:
                    assert status in (404, 405), (path, status, answer)  # never reaches a name-taking route whole
                else:
                    assert_rule(status, answer, rule, path)
    assert tree(root) == before, "a bad name created or removed something"
    assert call(port, "GET", "/v1/indexes/good")[1]["count"] == 1


@pytest.mark.parametrize("segment", RAW_SEGMENTS)
def test_percent_encoded_segments(root: Path, port: int, segment: str) -> None:
    before = tree(root)
    for field in ("index", "model"):
        for method, path, body in path_cases(segment, field):
            status, answer = call(port, method, path, body)
            decoded = unquote(segment)
            if "/" in decoded:
                # Routed as more segments: no route (404), or the texts/search route of another name (422 here).
                assert status in (404, 405, 422), (path, status, answer)
            else:
                rule = broken_rule(decoded, lowercase=field == "index")
                assert rule is not None
                assert_rule(status, answer, rule, path)
    assert tree(root) == before


def test_bad_aliases_and_versions_in_model_references(port: int) -> None:
    for ref in ("tiny@../x", "tiny@a/b", "tiny@.hidden", "tiny:0", "tiny:../1", "../tiny:1"):
        status, body = call(port, "POST", "/v1/embeddings", {"input": "hello", "model": ref})
        assert status == 422 and body["error"]["param"] == "model", (ref, status, body)
        assert body["error"]["code"] == "invalid_name", (ref, body)
    assert call(port, "POST", "/v1/embeddings", {"input": "hello", "model": "tiny@latest"})[0] == 200


def test_index_names_have_one_case(port: int) -> None:
    """Issue 19: names differing only by case or ending in a dot clashed on case-insensitive filesystems."""
    assert_rule(*call(port, "POST", "/v1/indexes", {"name": "Docs", "model": "tiny"}), "lowercase", "Docs")
    assert_rule(*call(port, "POST", "/v1/indexes", {"name": "docs.", "model": "tiny"}), "no-trailing-dot", "docs.")
    assert call(port, "POST", "/v1/indexes", {"name": "docs", "model": "tiny"})[0] == 201


def test_cases_counted() -> None:
    print(f"\nname cases over HTTP: {len(CASES)}")
    assert len(CASES) > 250
