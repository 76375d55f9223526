"""Hostile input: text that is not valid Unicode, huge fields, unknown fields, fields past their caps.

Every request goes through the real app over a store with the tiny dual encoder and a tiny Backpack, so a
lone surrogate reaches the real tokenizers if validation lets it through.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from error_body import assert_error
from fastapi.testclient import TestClient
from tiny_backpack import build_backpack_dir, publish_tiny_backpack

from xalign.service.app import create_app
from xalign.service.limits import MAX_NAME_CHARS, MAX_REF_CHARS, MAX_WORD_CHARS
from xalign.service.settings import Settings

BACKPACK = "tiny-backpack"
INDEX = "hostile"
LONE = "\ud800 abc"


@pytest.fixture(scope="module")
def client(tiny_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    root = tmp_path_factory.mktemp("hostile")
    store = root / "store"
    shutil.copytree(tiny_store, store)
    publish_tiny_backpack(build_backpack_dir(root / "backpack", seed=0), store, name=BACKPACK)
    settings = Settings(
        store=store, threads=1, max_inputs_per_request=8, max_chars_per_input=200, poll_interval_s=0,
        data_dir=root / "data",
    )  # fmt: skip
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        created = test_client.post("/v1/indexes", json={"name": INDEX, "model": "tiny"})
        assert created.status_code == 201, created.text
        assert test_client.post(f"/v1/indexes/{INDEX}/texts", json={"texts": ["a cat", "a dog"]}).status_code == 200
        yield test_client


def post(client: TestClient, path: str, body: Any) -> Any:
    """POST ``body`` as ASCII JSON: a lone surrogate travels as the escape ``\\ud800``, which JSON allows."""
    content = json.dumps(body, ensure_ascii=True)
    return client.post(path, content=content, headers={"content-type": "application/json"})


# (route, body, the field the 400 must name); each body is valid but for its one lone surrogate.
SURROGATES = [
    ("/v1/embeddings", {"model": "tiny", "input": LONE}, "input"),
    ("/v1/embeddings", {"model": "tiny", "input": ["fine", LONE]}, "input"),
    ("/v1/embeddings", {"model": "tiny\udfff", "input": "fine"}, "model"),
    ("/v1/embeddings", {"model": "tiny", "input": "fine", "user": LONE}, "user"),
    ("/v1/senses", {"model": BACKPACK, "input": LONE}, "input"),
    ("/v1/senses", {"model": BACKPACK, "input": "the cat", "next_word": LONE}, "next_word"),
    (f"/v1/indexes/{INDEX}/texts", {"texts": ["fine", LONE]}, "texts"),
    (f"/v1/indexes/{INDEX}/search", {"query": LONE}, "query"),
    (f"/v1/indexes/{INDEX}/search", {"query": ["fine", LONE]}, "query"),
    ("/v1/indexes", {"name": "x\ud800"}, "name"),
    ("/v1/bitext/mine", {"model": "tiny", "src": {"texts": [LONE]}, "tgt": {"texts": ["fine"]}}, "src.texts"),
    ("/v1/bitext/mine", {"model": "tiny", "src": {"texts": ["fine"]}, "tgt": {"texts": ["ok", LONE]}}, "tgt.texts"),
    ("/v1/bitext/mine", {"model": "tiny", "src": {"texts": ["fine"]}, "tgt": {"index": "\udc00"}}, "tgt.index"),
]


@pytest.mark.parametrize(("path", "body", "param"), SURROGATES)
def test_text_that_is_not_valid_unicode_is_a_400_naming_the_field(
    client: TestClient, path: str, body: dict[str, Any], param: str
) -> None:
    message = assert_error(post(client, path, body), 400, "invalid_request_error", param)
    assert "Unicode" in message
    assert client.get("/health").status_code == 200


def test_a_5_mb_next_word_is_refused_by_its_cap(client: TestClient) -> None:
    # Before the cap this took seconds of tokenising while every other request (/health too) waited.
    body = {"model": BACKPACK, "input": "the cat", "next_word": "x" * (5 << 20)}
    message = assert_error(post(client, "/v1/senses", body), 422, "validation_error", "next_word")
    assert str(MAX_WORD_CHARS) in message
    assert client.get("/health").status_code == 200


# (route, body, the unknown field); one per request model, nested ones included.
UNKNOWN = [
    ("/v1/embeddings", {"model": "tiny", "input": "x", "temperature": 1}, "temperature"),
    ("/v1/senses", {"model": BACKPACK, "input": "x", "nextword": "y"}, "nextword"),
    ("/v1/indexes", {"name": "u1", "model": "tiny", "metric": "l2"}, "metric"),
    (f"/v1/indexes/{INDEX}/texts", {"texts": ["x"], "ids": [1]}, "ids"),
    (f"/v1/indexes/{INDEX}/search", {"query": "x", "top_k": 3}, "top_k"),
    ("/v1/bitext/mine", {"src": {"texts": ["a"]}, "tgt": {"texts": ["b"]}, "mode": "fast"}, "mode"),
    ("/v1/bitext/mine", {"src": {"texts": ["a"], "lang": "en"}, "tgt": {"texts": ["b"]}}, "src.lang"),
]


@pytest.mark.parametrize(("path", "body", "field"), UNKNOWN)
def test_unknown_fields_are_refused_naming_them(
    client: TestClient, path: str, body: dict[str, Any], field: str
) -> None:
    message = assert_error(post(client, path, body), 422, "validation_error", field)
    assert field.rsplit(".", 1)[-1] in message


def test_every_request_body_refuses_unknown_fields(client: TestClient) -> None:
    """No request model (nested ones included) lets an unknown field through silently."""
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    bodies = [
        op["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
        for ops in client.get("/openapi.json").json()["paths"].values()
        for op in ops.values()
        if "requestBody" in op
    ]
    # Six synchronous routes of the first API, POST /v1/bitext/jobs, promote and rollback, and the text routes
    # (tokenize, similarity, rerank).
    assert len(bodies) == 12, bodies
    seen: set[str] = set()
    while bodies:
        name = bodies.pop()
        if name in seen:
            continue
        seen.add(name)
        assert schemas[name].get("additionalProperties") is False, name
        bodies += [ref.rsplit("/", 1)[-1] for ref in _refs(schemas[name]) if "Response" not in ref]
    assert {"TextsSide", "IndexSide"} <= seen


def _refs(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        if "$ref" in node:
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


# (route, body, the field past its cap); before the caps each was accepted, or refused only after a lookup.
CAPS = [
    ("/v1/embeddings", {"input": "x", "model": "m" * (MAX_REF_CHARS + 1)}, "model"),
    ("/v1/embeddings", {"model": "tiny", "input": "x", "user": "u" * 10_000}, "user"),
    ("/v1/senses", {"model": BACKPACK, "input": "x", "top_contributions": 1 << 40}, "top_contributions"),
    ("/v1/bitext/mine", {"src": {"texts": ["a"]}, "tgt": {"index": "i" * (MAX_NAME_CHARS + 1)}}, "tgt.index"),
]


@pytest.mark.parametrize(("path", "body", "param"), CAPS)
def test_fields_past_their_caps_are_refused_naming_them(
    client: TestClient, path: str, body: dict[str, Any], param: str
) -> None:
    assert_error(post(client, path, body), 422, "validation_error", param)


@pytest.mark.parametrize("method", ["get", "delete"])
def test_an_index_name_past_its_cap_in_the_path_is_refused(client: TestClient, method: str) -> None:
    response = client.request(method, "/v1/indexes/" + "n" * (MAX_NAME_CHARS + 1))
    assert_error(response, 422, "validation_error", "name")
