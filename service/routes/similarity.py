"""``POST /v1/similarity``: the cosine of each pair of texts, embedded by the requested (or default) model."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from xalign.service.cosine import cosines
from xalign.service.dependencies import RegistryDep, SettingsDep
from xalign.service.engine.batcher import Tokenizing
from xalign.service.limits import InputType, ModelRef, Text, check_pairs
from xalign.service.openapi import EMBEDS, error_responses
from xalign.service.usage import ModelUsage, Usage

router = APIRouter(tags=["similarity"])


class SimilarityRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pairs: list[tuple[Text, Text]]
    model: ModelRef | None = None
    input_type: InputType | None = None


class PairSimilarity(BaseModel):
    index: int
    similarity: float


class SimilarityResponse(ModelUsage):
    object: Literal["list"] = "list"
    data: list[PairSimilarity]


@router.post("/v1/similarity", responses=error_responses(*EMBEDS))
async def similarity(request: SimilarityRequest, registry: RegistryDep, settings: SettingsDep) -> SimilarityResponse:
    """Embed both texts of every pair (with the prefix of ``input_type``) and answer their cosines.

    A pair counts as two texts against ``max_inputs_per_request``; all texts are admitted and batched together.
    """
    texts = check_pairs(request.pairs, settings, "pairs")
    model = await registry.get(request.model)
    prefixes = [model.prefix(request.input_type)] * len(texts)
    vectors, tokens = await model.embed(texts, "pairs", Tokenizing(prefixes))  # (2 * pairs, dim)
    scores = cosines(vectors[0::2], vectors[1::2])  # (pairs,)
    data = [PairSimilarity(index=i, similarity=float(score)) for i, score in enumerate(scores)]
    return SimilarityResponse(model=model.id, data=data, usage=Usage.of(tokens))
