"""``input_type``: the manifest's prefix of that type, exactly as if the client had prefixed the text itself."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from error_body import assert_error
from fastapi.testclient import TestClient
from typed_prefixes import PREFIXES, TYPED, typed_store

from xalign.runtime.onnx_encoder import OnnxEncoder
from xalign.service.app import create_app
from xalign.service.engine.batcher import Batcher, BatchPolicy, Tokenizing
from xalign.service.settings import Settings

TEXTS = ["hello world", "the cat sat on the mat"]


@pytest.fixture(scope="module")
def store(tiny_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return typed_store(tiny_store, tmp_path_factory.mktemp("typed-store"))


@pytest.fixture(scope="module")
def client(store: Path) -> Iterator[TestClient]:
    settings = Settings(store=store, threads=1, max_inputs_per_request=8, max_chars_per_input=200)
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def _embed(client: TestClient, texts: list[str], **body: Any) -> np.ndarray:
    response = client.post("/v1/embeddings", json={"input": texts, **body})
    assert response.status_code == 200, response.text
    return np.array([d["embedding"] for d in response.json()["data"]])


@pytest.mark.parametrize("input_type", ["query", "passage"])
def test_input_type_equals_prefixing_by_hand(client: TestClient, input_type: str) -> None:
    typed = _embed(client, TEXTS, model=TYPED, input_type=input_type)
    by_hand = _embed(client, [PREFIXES[input_type] + t for t in TEXTS], model=TYPED)
    np.testing.assert_allclose(typed, by_hand, atol=1e-6)
    assert not np.allclose(typed, _embed(client, TEXTS, model=TYPED), atol=1e-3)  # the bare texts differ


def test_without_input_type_the_text_prefix_applies(client: TestClient) -> None:
    # Same weights: tiny's text_prefix "query: " equals tiny-typed's type "query".
    np.testing.assert_allclose(
        _embed(client, TEXTS, model="tiny"), _embed(client, TEXTS, model=TYPED, input_type="query"), atol=1e-6
    )


def test_a_type_the_model_does_not_define_is_a_422(client: TestClient) -> None:
    response = client.post("/v1/embeddings", json={"input": "x", "model": "tiny", "input_type": "passage"})
    assert "defines no prefix" in assert_error(response, 422, "validation_error", "input_type")


def test_tokenize_shows_the_types_prefix(client: TestClient) -> None:
    body = {"input": "ab", "model": TYPED, "input_type": "passage"}
    (item,) = client.post("/v1/tokenize", json=body).json()["data"]
    assert "".join(t.removeprefix("##") for t in item["tokens"][1:8]) == "passage"
    (bare,) = client.post("/v1/tokenize", json={"input": "ab", "model": TYPED}).json()["data"]
    assert bare["tokens"] == ["[CLS]", "a", "##b", "[SEP]"]


def test_rerank_embeds_the_query_and_the_documents_with_their_types(client: TestClient) -> None:
    documents = ["the cat sat", "a dog ran far", "xyz"]
    body = {"query": "cats", "documents": documents, "model": TYPED}
    results = client.post("/v1/rerank", json=body).json()["results"]
    query = _embed(client, ["cats"], model=TYPED, input_type="query")[0]
    passages = _embed(client, documents, model=TYPED, input_type="passage")
    expected = passages @ query / (np.linalg.norm(passages, axis=1) * np.linalg.norm(query))
    np.testing.assert_allclose([r["relevance_score"] for r in results], np.sort(expected)[::-1], atol=1e-5)


def test_similarity_uses_the_requested_type(client: TestClient) -> None:
    pairs = [["hello world", "the cat sat"]]
    typed = client.post("/v1/similarity", json={"pairs": pairs, "model": TYPED, "input_type": "passage"}).json()
    by_hand = client.post(
        "/v1/similarity", json={"pairs": [[f"passage: {t}" for t in pairs[0]]], "model": TYPED}
    ).json()
    assert typed["data"][0]["similarity"] == pytest.approx(by_hand["data"][0]["similarity"], abs=1e-6)


def test_texts_with_different_prefixes_share_one_batch(store: Path) -> None:
    """One submit with a prefix per text (one padded batch) gives what one prefix per submit gives."""
    encoder = OnnxEncoder.from_store(store, TYPED, threads=1)
    policy = BatchPolicy.from_settings(Settings(batch_size=8))

    async def scenario() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        batcher = Batcher(encoder, policy)
        mixed, _ = await batcher.submit(TEXTS, how=Tokenizing(["query: ", "passage: "]))
        query, _ = await batcher.submit(TEXTS[:1], how=Tokenizing(["query: "]))
        passage, _ = await batcher.submit(TEXTS[1:], how=Tokenizing(["passage: "]))
        await batcher.close()
        return mixed, query, passage

    mixed, query, passage = asyncio.run(scenario())
    np.testing.assert_allclose(mixed, np.concatenate([query, passage]), atol=1e-6)
    np.testing.assert_allclose(mixed, encoder.encode(["query: " + TEXTS[0], "passage: " + TEXTS[1]]), atol=1e-6)
