"""``/v1/indexes``: persistent FAISS indexes of texts (create, list, describe, add texts, search, delete)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Literal

from pydantic import Field

from xalign.client.calls import Call, body, parsed, segment
from xalign.client.endpoints import Endpoint, R, Resource
from xalign.client.wire import Usage, WireModel

IndexKind = Literal["flat", "ivf", "hnsw"]


class Reembedding(WireModel):
    """A background re-embedding of the index with a newer model version (``done`` of ``total`` texts)."""

    state: str  # running or failed
    target_version: int
    done: int
    total: int
    error: str | None = None


class IndexInfo(WireModel):
    """An index: the model version that embedded it, its kind and parameters, how many texts it holds."""

    object: str = "index"
    name: str
    count: int  # texts stored
    kind: str  # flat, ivf or hnsw
    params: dict[str, int] = Field(default_factory=dict)  # ivf: nlist, nprobe, train_size; hnsw: m, ef_*
    model: str  # the model name; model_version is the version whose space the vectors are in
    model_version: int
    dim: int
    device: str  # where FAISS searches it (cpu or cuda)
    created_at: datetime
    reembedding: Reembedding | None = None  # while a newer served version re-embeds the texts


class IndexList(WireModel):
    """Every index, by name."""

    object: str = "list"
    data: list[IndexInfo]


class AddedTexts(WireModel):
    """The ids (row numbers) of texts just added, durable on disk."""

    ids: list[int]
    model: str
    usage: Usage


class Match(WireModel):
    """A stored text and its cosine to the query."""

    id: int
    text: str
    score: float


class QueryMatches(WireModel):
    """The matches of query ``index`` (its position in the request), best first."""

    index: int
    matches: list[Match]


class SearchResult(WireModel):
    """One entry per query, in query order."""

    object: str = "list"
    data: list[QueryMatches]
    model: str
    usage: Usage


class DeletedIndex(WireModel):
    """The index removed, with its files."""

    name: str
    deleted: bool = True


class Indexes(Resource[R]):
    """``client.indexes``: create, list, get, add texts, search and delete."""

    @Endpoint
    @staticmethod
    def create(
        name: str, *, model: str | None = None, kind: IndexKind | None = None, params: Mapping[str, int] | None = None
    ) -> Call[IndexInfo]:
        """Create an empty index embedded by ``model``'s served version (admin).

        >>> client.indexes.create("news", kind="hnsw", params={"m": 16}).count
        0
        """
        json = {"name": name, **body(model=model, kind=kind, params=dict(params) if params is not None else None)}
        # Creates state: sent again only after a 429/503, which the service answers before creating anything.
        return Call("POST", "/v1/indexes", parsed(IndexInfo), json=json, idempotent=False)

    @Endpoint
    @staticmethod
    def list() -> Call[IndexList]:
        """Every index, by name.

        >>> [(index.name, index.count) for index in client.indexes.list().data]
        [('news', 2)]
        """
        return Call("GET", "/v1/indexes", parsed(IndexList))

    @Endpoint
    @staticmethod
    def get(name: str) -> Call[IndexInfo]:
        """Count, kind, parameters, model version and re-embedding progress of one index.

        >>> client.indexes.get("news").reembedding  # None unless a newer model version is re-embedding it
        """
        return Call("GET", f"/v1/indexes/{segment(name)}", parsed(IndexInfo))

    @Endpoint
    @staticmethod
    def add(name: str, texts: Sequence[str]) -> Call[AddedTexts]:
        """Embed and store ``texts`` (admin); answered once they are durable. Returns their ids.

        >>> client.indexes.add("news", ["the cat sat", "a dog ran"]).ids
        [0, 1]
        """
        # Not retried after a connection error: texts sent twice would be stored twice.
        path = f"/v1/indexes/{segment(name)}/texts"
        return Call("POST", path, parsed(AddedTexts), json={"texts": list(texts)}, idempotent=False)

    @Endpoint
    @staticmethod
    def search(name: str, query: str | Sequence[str], *, k: int | None = None) -> Call[SearchResult]:
        """The ``k`` stored texts closest to each query (cosine), best first.

        >>> client.indexes.search("news", "cat", k=1).data[0].matches[0].text
        'the cat sat'
        """
        queries = query if isinstance(query, str) else list(query)
        path = f"/v1/indexes/{segment(name)}/search"
        return Call("POST", path, parsed(SearchResult), json={"query": queries, **body(k=k)})

    @Endpoint
    @staticmethod
    def delete(name: str) -> Call[DeletedIndex]:
        """Delete an index and its files (admin)."""
        return Call("DELETE", f"/v1/indexes/{segment(name)}", parsed(DeletedIndex), idempotent=False)
