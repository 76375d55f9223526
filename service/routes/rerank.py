"""``POST /v1/rerank``: documents ranked by cosine to a query, in the served embedding space (Cohere's shape)."""

from __future__ import annotations

from typing import Literal

import numpy as np
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from xalign.service.cosine import cosines
from xalign.service.dependencies import RegistryDep, SettingsDep
from xalign.service.engine.batcher import Tokenizing
from xalign.service.limits import ModelRef, Text, TopN, check_text, check_texts
from xalign.service.openapi import EMBEDS, error_responses
from xalign.service.usage import ModelUsage, Usage

router = APIRouter(tags=["rerank"])


class RerankRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: Text
    documents: list[Text]
    top_n: TopN | None = None
    return_documents: bool = False
    model: ModelRef | None = None


class RerankResult(BaseModel):
    """One document: its index in the request, its cosine to the query, itself if ``return_documents``."""

    index: int
    relevance_score: float
    document: str | None  # always present: null unless return_documents


class RerankResponse(ModelUsage):
    """The documents best first, cut to ``top_n``."""

    object: Literal["rerank"] = "rerank"
    results: list[RerankResult]


@router.post("/v1/rerank", responses=error_responses(*EMBEDS))
async def rerank(request: RerankRequest, registry: RegistryDep, settings: SettingsDep) -> RerankResponse:
    """Score every document by its cosine to the query; the ``top_n`` best (all by default), best first.

    The query gets the model's ``query`` prefix and documents its ``passage`` prefix where the manifest
    defines them (else its ``text_prefix``); query and documents are admitted and batched as one request.
    """
    query = check_text(request.query, settings, "query")
    documents = check_texts(request.documents, settings, "documents")
    model = await registry.get(request.model)
    prefixes = [model.prefix_or_default("query")] + [model.prefix_or_default("passage")] * len(documents)
    vectors, tokens = await model.embed([query, *documents], "documents", Tokenizing(prefixes))  # (1 + docs, dim)
    scores = cosines(vectors[:1], vectors[1:])  # (docs,)
    # Stable: equal scores keep the documents' order.
    order = np.argsort(-scores, kind="stable")[: request.top_n]
    results = [
        RerankResult(
            index=int(i),
            relevance_score=float(scores[i]),
            document=documents[i] if request.return_documents else None,
        )
        for i in order
    ]
    return RerankResponse(model=model.id, results=results, usage=Usage.of(tokens))
