"""``POST /v1/bitext/mine``: LASER margin-based mining between sentences and/or stored indexes.

For small inputs, answered in the request; larger ones (files, up to ``max_job_texts_per_side`` lines a
side) go to the job API, ``POST /v1/bitext/jobs`` (``service/routes/bitext_jobs.py``).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from xalign.runtime.margin import Margin, MiningConfig, Retrieval
from xalign.service.dependencies import IndexesDep, RegistryDep, SettingsDep
from xalign.service.errors import ConflictError, PayloadTooLargeError
from xalign.service.limits import K, ModelRef, Name, Text, check_texts
from xalign.service.openapi import EMBEDS, error_responses
from xalign.service.search.bitext import SideSpec, mine_sides
from xalign.service.search.index_service import check_index_name
from xalign.service.usage import Usage

router = APIRouter(tags=["bitext"])


class TextsSide(BaseModel):
    """Inline sentences, embedded for this request."""

    model_config = ConfigDict(extra="forbid")
    texts: list[Text]


class IndexSide(BaseModel):
    """A stored index: its stored vectors are mined, in the space of the version that embedded them."""

    model_config = ConfigDict(extra="forbid")
    index: Name


def _side_kind(side: Any) -> str:
    # An object with "index" and no "texts" is an index side; anything else is validated as inline texts, so
    # an error names the field at fault (src.texts, src.lang) instead of every way both kinds failed.
    is_index = isinstance(side, dict) and "index" in side and "texts" not in side
    return "IndexSide" if is_index or isinstance(side, IndexSide) else "TextsSide"


# Tags are the class names: capitalised, so an error's param leaves them out (src.texts, not src.TextsSide.texts).
Side = Annotated[
    Annotated[TextsSide, Tag("TextsSide")] | Annotated[IndexSide, Tag("IndexSide")], Discriminator(_side_kind)
]


class MineRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    src: Side
    tgt: Side
    model: ModelRef | None = Field(default=None, description="for inline sides; must match an index side's model")
    margin: Margin = "ratio"
    k: K = Field(default=4, description="neighbourhood size")
    retrieval: Retrieval = "max"
    threshold: float | None = Field(default=None, allow_inf_nan=False, description="keep pairs scoring >= this")


class Pair(BaseModel):
    src_id: int = Field(description="row of the src texts, or id in the src index")
    tgt_id: int
    src_text: str
    tgt_text: str
    score: float | None = Field(description="margin score; null if undefined (ratio over a zero neighbourhood)")
    cosine: float


class MineResponse(BaseModel):
    object: Literal["list"] = "list"
    pairs: list[Pair]
    model: str
    usage: Usage


# Said by every 413 of this route: where inputs past its limits go.
JOBS_HINT = "; for larger inputs submit a mining job: POST /v1/bitext/jobs"


def _spec(side: TextsSide | IndexSide, settings: SettingsDep, param: str) -> SideSpec:
    if isinstance(side, TextsSide):
        return SideSpec(texts=check_texts(side.texts, settings, f"{param}.texts"))
    return SideSpec(index=check_index_name(side.index, f"{param}.index"))


@router.post("/v1/bitext/mine", responses=error_responses(*EMBEDS, ConflictError))
async def mine_bitext(
    request: MineRequest, registry: RegistryDep, indexes: IndexesDep, settings: SettingsDep
) -> MineResponse:
    """Mine parallel pairs with LASER's margin scoring; pairs sorted by descending score.

    For small inputs: each inline side at most ``max_inputs_per_request`` texts and both together at most
    ``max_tokens_per_request`` tokens (413 above). Larger inputs, files of up to ``max_job_texts_per_side``
    lines a side, go to the job API: ``POST /v1/bitext/jobs`` answers at once and mines in the background.
    """
    config = MiningConfig(request.margin, request.k, request.retrieval, request.threshold)
    try:
        src, tgt = _spec(request.src, settings, "src"), _spec(request.tgt, settings, "tgt")
        result = await mine_sides(indexes, registry, src, tgt, model=request.model, config=config)
    except PayloadTooLargeError as exc:
        raise PayloadTooLargeError(exc.message + JOBS_HINT, exc.param, code=exc.code) from None
    pairs = [
        Pair(
            src_id=m.pair.src,
            tgt_id=m.pair.tgt,
            src_text=m.src_text,
            tgt_text=m.tgt_text,
            score=m.pair.score if math.isfinite(m.pair.score) else None,
            cosine=m.pair.cosine,
        )
        for m in result.pairs
    ]
    return MineResponse(pairs=pairs, model=result.model, usage=Usage.of(result.tokens))
