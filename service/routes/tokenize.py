"""``POST /v1/tokenize``: the tokens and ids a model sees, prefix and special tokens included."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from xalign.service.dependencies import RegistryDep, SettingsDep
from xalign.service.limits import InputType, ModelRef, Text, check_texts
from xalign.service.openapi import USES_MODEL, error_responses

router = APIRouter(tags=["tokenize"])


class TokenizeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input: Text | list[Text]
    model: ModelRef | None = None
    input_type: InputType | None = None


class TokenizedText(BaseModel):
    index: int
    ids: list[int]
    tokens: list[str]
    count: int
    truncated: bool


class TokenizeResponse(BaseModel):
    object: Literal["list"] = "list"
    model: str
    data: list[TokenizedText]


@router.post("/v1/tokenize", responses=error_responses(*USES_MODEL))
async def tokenize(request: TokenizeRequest, registry: RegistryDep, settings: SettingsDep) -> TokenizeResponse:
    """Each text as the requested (or default) model sees it: after its prefix, truncated to its token limit."""
    texts = check_texts([request.input] if isinstance(request.input, str) else request.input, settings, "input")
    model = await registry.get(request.model)
    tokenized = await model.tokenize(texts, model.prefix(request.input_type))
    data = [
        TokenizedText(index=i, ids=t.ids, tokens=t.tokens, count=len(t.ids), truncated=t.truncated)
        for i, t in enumerate(tokenized)
    ]
    return TokenizeResponse(model=model.id, data=data)
