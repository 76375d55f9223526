"""``/v1/indexes``: create, list, describe, add texts to, search and delete persistent FAISS indexes."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from xalign.service.dependencies import IndexesDep, SettingsDep
from xalign.service.errors import ConflictError
from xalign.service.limits import IndexParams, K, ModelRef, Name, NameInPath, Text, check_texts
from xalign.service.openapi import EMBEDS, NAMED, USES_MODEL, error_responses
from xalign.service.search.index_service import IndexService
from xalign.service.search.index_store import StoredIndex
from xalign.service.search.persistence import IndexKind
from xalign.service.search.reembed import Reembedding
from xalign.service.usage import Usage

router = APIRouter(tags=["indexes"])


class CreateIndexRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name = Field(min_length=1, description="letters, digits, '.', '_', '-'")
    model: ModelRef | None = Field(default=None, description="default model if absent")
    kind: IndexKind = "flat"
    params: IndexParams | None = Field(
        default=None, description="ivf: nlist, nprobe, train_size; hnsw: m, ef_construction, ef_search"
    )


class IndexInfo(BaseModel):
    object: Literal["index"] = "index"
    name: str
    model: str
    model_version: int
    dim: int
    kind: IndexKind
    params: dict[str, int]
    count: int
    device: str
    created_at: datetime
    reembedding: Reembedding | None = None


class IndexList(BaseModel):
    object: Literal["list"] = "list"
    data: list[IndexInfo]


class AddTextsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    texts: list[Text]


class AddTextsResponse(BaseModel):
    ids: list[int]
    model: str
    usage: Usage


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: Text | list[Text]
    k: K = 10


class Match(BaseModel):
    id: int
    text: str
    score: float = Field(description="cosine similarity")


class QueryResult(BaseModel):
    index: int = Field(description="position of the query in the request")
    matches: list[Match]


class SearchResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[QueryResult]
    model: str
    usage: Usage


class Deleted(BaseModel):
    name: str
    deleted: bool = True


def describe(indexes: IndexService, index: StoredIndex) -> IndexInfo:
    """The public description of one index."""
    meta = index.meta
    status = indexes.reembedding(meta.name)
    reembedding = None if status is None else dataclasses.replace(status)  # a copy: the re-embedding goes on
    fields: dict[str, Any] = meta.model_dump(include={"name", "model", "model_version", "dim", "kind", "params"})
    return IndexInfo(
        **fields, count=index.count, device=index.device, created_at=meta.created_at, reembedding=reembedding
    )


@router.post("/v1/indexes", status_code=201, responses=error_responses(*USES_MODEL, ConflictError))
async def create_index(request: CreateIndexRequest, indexes: IndexesDep) -> IndexInfo:
    """Create an empty index, embedded by the requested (or default) model's served version."""
    index = await indexes.create(request.name, request.model, request.kind, request.params)
    return describe(indexes, index)


@router.get("/v1/indexes")
async def list_indexes(indexes: IndexesDep) -> IndexList:
    """Every index, by name."""
    return IndexList(data=[describe(indexes, index) for index in indexes.all()])


@router.get("/v1/indexes/{name}", responses=error_responses(*NAMED))
async def describe_index(name: NameInPath, indexes: IndexesDep) -> IndexInfo:
    """Count, kind, parameters, model version and re-embedding progress of one index."""
    return describe(indexes, indexes.get(name))


@router.post("/v1/indexes/{name}/texts", responses=error_responses(*NAMED, *EMBEDS))
async def add_texts(
    name: NameInPath, request: AddTextsRequest, indexes: IndexesDep, settings: SettingsDep
) -> AddTextsResponse:
    """Embed and store texts; answered once they are durable on disk. Returns their ids (row numbers)."""
    texts = check_texts(request.texts, settings, "texts")
    ids, tokens, model = await indexes.add(name, texts)
    return AddTextsResponse(ids=ids, model=model, usage=Usage.of(tokens))


@router.post("/v1/indexes/{name}/search", responses=error_responses(*NAMED, *EMBEDS))
async def search_index(
    name: NameInPath, request: SearchRequest, indexes: IndexesDep, settings: SettingsDep
) -> SearchResponse:
    """Top-k stored texts by cosine for each query, embedded with the version that built the index."""
    queries = check_texts([request.query] if isinstance(request.query, str) else request.query, settings, "query")
    hits, tokens, model = await indexes.search(name, queries, request.k)
    data = [
        QueryResult(index=i, matches=[Match(id=h.id, text=h.text, score=h.score) for h in row])
        for i, row in enumerate(hits)
    ]
    return SearchResponse(data=data, model=model, usage=Usage.of(tokens))


@router.delete("/v1/indexes/{name}", responses=error_responses(*NAMED))
async def delete_index(name: NameInPath, indexes: IndexesDep) -> Deleted:
    """Delete an index and its files."""
    await indexes.delete(name)
    return Deleted(name=name)
