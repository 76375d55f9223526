"""Every call of ``xalign.client`` against a live server, with the sync and the async client: typed results whose
values agree with the service's own answers."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from client_flavours import AnyClient, collect, run_with, settle
from client_server import ADMIN_KEY, Live

from xalign.client import (
    AddedTexts,
    DeletedIndex,
    IndexInfo,
    IndexSide,
    Job,
    MineResult,
    ModelDetail,
    ModelList,
    NotFoundError,
    Pair,
    PairsPage,
    ReloadResult,
    RerankResult,
    SearchResult,
    SimilarityResult,
    Tokenization,
)

TEXTS = ["hello world", "Hallo Welt", "the cat sat on the mat"]
SRC = ["the cat sat on the mat", "a dog ran far away", "good morning"]
TGT = ["good morning!", "the cat sat on the mat.", "a dog ran away"]


def _service_floats(base_url: str, texts: list[str]) -> np.ndarray:
    """The service's float embeddings, asked without the client."""
    response = httpx.post(
        f"{base_url}/v1/embeddings",
        json={"input": texts},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return np.array([d["embedding"] for d in response.json()["data"]], dtype=np.float32)


def test_models_list_and_reload(live: Live, flavour: str) -> None:
    async def scenario(client: AnyClient) -> None:
        models = await settle(client.models.list())
        assert isinstance(models, ModelList)
        assert [(m.id, m.name, m.version, m.dimension) for m in models.data] == [("tiny:1", "tiny", 1, 32)]
        assert models.errors == {}
        reloaded = await settle(client.models.reload("tiny"))
        assert isinstance(reloaded, ReloadResult)
        assert (reloaded.name, reloaded.previous, reloaded.version, reloaded.changed) == ("tiny", 1, 1, False)

    run_with(flavour, scenario, live.base_url, api_key=ADMIN_KEY)


def test_model_card(live: Live, flavour: str) -> None:
    async def scenario(client: AnyClient) -> None:
        for ref in ("tiny", "tiny:1"):
            card = await settle(client.models.get(ref))
            assert isinstance(card, ModelDetail)
            assert (card.id, card.name, card.version, card.default) == ("tiny:1", "tiny", 1, True)
            assert card.versions == [1]
            assert card.languages == ["en", "de"]
        with pytest.raises(NotFoundError) as missing:
            await settle(client.models.get("no-such-model"))
        assert (missing.value.status, missing.value.code) == (404, "model_not_found")

    run_with(flavour, scenario, live.base_url, api_key=ADMIN_KEY)


def test_embed_returns_the_service_vectors(live: Live, flavour: str) -> None:
    expected = _service_floats(live.base_url, TEXTS)

    async def scenario(client: AnyClient) -> None:
        vectors = await settle(client.embed(TEXTS))
        assert vectors.dtype == np.float32
        assert vectors.shape == (3, 32)
        np.testing.assert_array_equal(vectors, expected)  # base64 on the wire: the same bits
        single = await settle(client.embed(TEXTS[0], model="tiny"))
        assert single.shape == (1, 32)
        np.testing.assert_allclose(single[0], expected[0], atol=1e-6)  # padded alone: equal up to rounding

    run_with(flavour, scenario, live.base_url, api_key=ADMIN_KEY)


def test_tokenize(live: Live, flavour: str) -> None:
    async def scenario(client: AnyClient) -> None:
        result = await settle(client.tokenize(["hello", "x " * 500]))
        assert isinstance(result, Tokenization)
        assert result.model == "tiny:1"
        short, long = result.data
        assert (short.index, long.index) == (0, 1)
        assert short.count == len(short.ids) == len(short.tokens)
        assert (short.truncated, long.truncated) == (False, True)
        assert long.count > short.count

    run_with(flavour, scenario, live.base_url, api_key=ADMIN_KEY)


def test_similarity_is_the_cosine_of_the_embeddings(live: Live, flavour: str) -> None:
    pairs = [("hello world", "Hallo Welt"), ("the cat sat on the mat", "hello world")]

    async def scenario(client: AnyClient) -> None:
        result = await settle(client.similarity(pairs))
        assert isinstance(result, SimilarityResult)
        assert [entry.index for entry in result.data] == [0, 1]
        for (a, b), score in zip(pairs, result.scores, strict=True):
            vectors = await settle(client.embed([a, b]))
            assert score == pytest.approx(float(vectors[0] @ vectors[1]), abs=1e-5)
        assert result.usage.prompt_tokens > 0

    run_with(flavour, scenario, live.base_url, api_key=ADMIN_KEY)


def test_rerank_sorts_by_cosine(live: Live, flavour: str) -> None:
    query, documents = "the cat sat", ["a dog ran far away", "the cat sat on the mat", "good morning"]

    async def scenario(client: AnyClient) -> None:
        result = await settle(client.rerank(query, documents, return_documents=True))
        assert isinstance(result, RerankResult)
        scores = [hit.relevance_score for hit in result.results]
        assert scores == sorted(scores, reverse=True)
        assert sorted(hit.index for hit in result.results) == [0, 1, 2]
        assert [hit.document for hit in result.results] == [documents[hit.index] for hit in result.results]
        vectors = await settle(client.embed([query, *documents]))
        for hit in result.results:
            assert hit.relevance_score == pytest.approx(float(vectors[0] @ vectors[1 + hit.index]), abs=1e-5)
        top = await settle(client.rerank(query, documents, top_n=1))
        assert [hit.index for hit in top.results] == [result.results[0].index]
        assert top.results[0].document is None

    run_with(flavour, scenario, live.base_url, api_key=ADMIN_KEY)


def test_mine(live: Live, flavour: str) -> None:
    async def scenario(client: AnyClient) -> None:
        result = await settle(client.mine(SRC, TGT, k=2))
        assert isinstance(result, MineResult)
        assert result.model == "tiny:1"
        assert result.pairs and all(isinstance(p, Pair) for p in result.pairs)
        for pair in result.pairs:
            assert (pair.src_text, pair.tgt_text) == (SRC[pair.src_id], TGT[pair.tgt_id])
        scores = [p.score for p in result.pairs if p.score is not None]
        assert scores == sorted(scores, reverse=True)

    run_with(flavour, scenario, live.base_url, api_key=ADMIN_KEY)


def test_indexes(live: Live, flavour: str) -> None:
    name = f"client-{flavour}"

    async def scenario(client: AnyClient) -> None:
        created = await settle(client.indexes.create(name, kind="flat"))
        assert isinstance(created, IndexInfo)
        assert (created.name, created.model, created.kind, created.count, created.dim) == (name, "tiny", "flat", 0, 32)
        added = await settle(client.indexes.add(name, SRC))
        assert isinstance(added, AddedTexts)
        assert added.ids == [0, 1, 2]
        assert (await settle(client.indexes.get(name))).count == 3
        assert name in [index.name for index in (await settle(client.indexes.list())).data]
        found = await settle(client.indexes.search(name, ["a dog ran far away", "good morning"], k=2))
        assert isinstance(found, SearchResult)
        assert [q.matches[0].id for q in found.data] == [1, 2]
        assert found.data[0].matches[0].score == pytest.approx(1.0, abs=1e-5)
        mined = await settle(client.mine(IndexSide(name), TGT, k=2))
        assert {p.src_text for p in mined.pairs} <= set(SRC)
        deleted = await settle(client.indexes.delete(name))
        assert deleted == DeletedIndex(name=name, deleted=True)
        with pytest.raises(NotFoundError):
            await settle(client.indexes.get(name))

    run_with(flavour, scenario, live.base_url, api_key=ADMIN_KEY)


def test_jobs(live: Live, flavour: str) -> None:
    async def scenario(client: AnyClient) -> None:
        job = await settle(client.jobs.create(SRC, TGT, k=2))
        assert isinstance(job, Job)
        assert job.state in {"queued", "running", "succeeded"}
        assert (job.src.kind, job.src.lines, job.model) == ("texts", 3, "tiny:1")
        seen: list[Job] = []
        done = await settle(client.jobs.wait(job.id, poll=0.05, timeout=60, progress=seen.append))
        assert done.state == "succeeded" and done.finished
        assert seen[-1] == done and all(isinstance(j, Job) for j in seen)
        assert job.id in [j.id for j in (await settle(client.jobs.list())).data]
        assert done.counts is not None
        everything = await settle(client.jobs.pairs(job.id))
        assert isinstance(everything, PairsPage)
        assert everything.total == done.counts.pairs == len(everything.data) > 0
        first = await settle(client.jobs.pairs(job.id, offset=0, limit=1))
        assert (first.data, first.has_more) == (everything.data[:1], everything.total > 1)
        streamed = await collect(client.jobs.stream_pairs(job.id))
        assert streamed == everything.data
        assert await collect(client.jobs.stream_pairs(job.id, offset=1, limit=1)) == everything.data[1:2]
        removed = await settle(client.jobs.delete(job.id))
        assert (removed.id, removed.deleted) == (job.id, True)
        with pytest.raises(NotFoundError):
            await settle(client.jobs.get(job.id))

    run_with(flavour, scenario, live.base_url, api_key=ADMIN_KEY)
