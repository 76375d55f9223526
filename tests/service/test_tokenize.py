"""``POST /v1/tokenize``: the ids the service embeds, their token strings, truncation, and its checks."""

from __future__ import annotations

from pathlib import Path

import pytest
from error_body import assert_error
from fastapi.testclient import TestClient
from tiny_models import MAX_LEN

from xalign.modelstore import ModelStore
from xalign.modelstore.artifacts import TOKENIZER_FILE
from xalign.modelstore.refs import parse_ref
from xalign.runtime.tokenization import TextTokenizer

TEXTS = ["hello world", "Der Zug ist spät.", " ".join("abcdefghijklmnopqrstuvwxyz" * 3)]


@pytest.fixture(scope="module")
def reference(tiny_store: Path) -> TextTokenizer:
    """The runtime's tokenizer of the published version, built here from its files."""
    version = ModelStore(tiny_store).load(parse_ref("tiny"))
    manifest = version.manifest
    return TextTokenizer(version.file(TOKENIZER_FILE), manifest.max_seq_length, manifest.text_prefix)


def test_ids_are_what_the_runtime_tokenizer_gives(client: TestClient, reference: TextTokenizer) -> None:
    response = client.post("/v1/tokenize", json={"input": TEXTS})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["object"], body["model"]) == ("list", "tiny:1")
    data = body["data"]
    assert [d["index"] for d in data] == [0, 1, 2]
    assert [d["ids"] for d in data] == reference.encode_ids(TEXTS)
    assert [d["count"] for d in data] == [len(d["ids"]) for d in data]
    assert [d["truncated"] for d in data] == [False, False, True]
    assert data[2]["count"] == MAX_LEN


def test_tokens_show_the_prefix_and_special_tokens(client: TestClient) -> None:
    (item,) = client.post("/v1/tokenize", json={"input": "ab"}).json()["data"]
    # "query: " is the tiny model's prefix; ":" is not in its vocabulary.
    assert item["tokens"] == ["[CLS]", "q", "##u", "##e", "##r", "##y", "[UNK]", "a", "##b", "[SEP]"]
    assert item["ids"][0] == 2 and item["ids"][-1] == 3


def test_count_equals_embedding_usage(client: TestClient) -> None:
    counts = [d["count"] for d in client.post("/v1/tokenize", json={"input": TEXTS}).json()["data"]]
    usage = client.post("/v1/embeddings", json={"input": TEXTS}).json()["usage"]
    assert usage["prompt_tokens"] == sum(counts)


@pytest.mark.parametrize(
    ("body", "status", "error_type", "param"),
    [
        ({"input": []}, 400, "invalid_request_error", "input"),
        ({"input": ["  "]}, 400, "invalid_request_error", "input"),
        ({"input": ["x" * 201]}, 413, "payload_too_large", "input"),
        ({"input": ["x"] * 9}, 413, "payload_too_large", "input"),
        ({"input": "x", "input_type": "passage"}, 422, "validation_error", "input_type"),
        ({"input": "x", "input_type": "document"}, 422, "validation_error", "input_type"),
        ({"input": "x", "truncate": False}, 422, "validation_error", "truncate"),
        ({"input": "x", "model": "absent"}, 404, "not_found_error", "model"),
    ],
)
def test_bad_requests(client: TestClient, body: dict[str, object], status: int, error_type: str, param: str) -> None:
    assert_error(client.post("/v1/tokenize", json=body), status, error_type, param)
