"""``POST /v1/embeddings``: OpenAI-compatible embeddings."""

from __future__ import annotations

import base64
from typing import Literal

import numpy as np
import pydantic_core
from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict

from xalign.runtime.onnx_encoder import Vectors
from xalign.service.dependencies import RegistryDep, SettingsDep
from xalign.service.engine.batcher import Tokenizing
from xalign.service.errors import InvalidRequestError, UnprocessableError
from xalign.service.limits import Dimensions, InputType, ModelRef, Text, User, check_texts
from xalign.service.loaded_model import LoadedModel
from xalign.service.openapi import EMBEDS, error_responses
from xalign.service.settings import Settings
from xalign.service.usage import Usage

router = APIRouter(tags=["embeddings"])


class EmbeddingRequest(BaseModel):
    # Unknown fields are refused (422 naming them), as on every request; OpenAI's clients send only these.
    model_config = ConfigDict(extra="forbid")
    # Token-id inputs are typed here only so they get a clear error instead of a schema mismatch.
    input: Text | list[Text] | list[int] | list[list[int]]
    model: ModelRef | None = None
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: Dimensions | None = None
    user: User | None = None
    # False: an input past the model's token limit answers 413 instead of being embedded cut.
    truncate: bool = True
    # The manifest's prefix for this type (``text_prefixes``); None: its ``text_prefix``.
    input_type: InputType | None = None


class Embedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class EmbeddingResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: Usage


def _texts(request: EmbeddingRequest, settings: Settings) -> list[str]:
    """The request's texts, checked against the limits."""
    raw = [request.input] if isinstance(request.input, str) else request.input
    if raw and not all(isinstance(x, str) for x in raw):
        raise InvalidRequestError("token-id inputs are not supported: send text", "input", code="unsupported_input")
    return check_texts([x for x in raw if isinstance(x, str)], settings, "input")


def _resize(vectors: Vectors, dimensions: int | None, model: LoadedModel) -> Vectors:
    """Truncate to ``dimensions`` (Matryoshka) and renormalise, where the manifest allows it."""
    if dimensions is None or dimensions == model.manifest.embedding_dim:
        return vectors
    if dimensions not in model.manifest.allowed_dimensions:
        allowed = sorted({*model.manifest.allowed_dimensions, model.manifest.embedding_dim})
        raise UnprocessableError(f"{model.id} supports dimensions {allowed}", "dimensions")
    cut = vectors[:, :dimensions]
    return np.asarray(cut / np.linalg.norm(cut, axis=1, keepdims=True), dtype=np.float32)


def _encode_row(row: Vectors, encoding_format: str) -> list[float] | str:
    if encoding_format == "base64":
        # OpenAI's base64 format: little-endian float32 bytes.
        return base64.b64encode(row.astype("<f4").tobytes()).decode("ascii")
    return row.tolist()  # type: ignore[no-any-return]  # (dim,) float32 -> Python floats, in C


def response_body(vectors: Vectors, encoding_format: str, model_id: str, tokens: int) -> bytes:
    """``EmbeddingResponse`` as JSON bytes, written straight from the vectors (rows, dim).

    The route returns these bytes instead of the model: FastAPI would validate the returned model field by
    field and serialise it again, which for float vectors is a Python object per number (32 texts x 384
    floats per request) on the event loop. The shape is the declared ``EmbeddingResponse`` (a test checks).
    """
    data = [{"object": "embedding", "index": i, "embedding": _encode_row(v, encoding_format)} for i, v in
            enumerate(vectors)]  # fmt: skip
    body = {"object": "list", "data": data, "model": model_id, "usage": Usage.of(tokens).model_dump()}
    return pydantic_core.to_json(body)


@router.post("/v1/embeddings", response_model=EmbeddingResponse, responses=error_responses(*EMBEDS))
async def create_embeddings(request: EmbeddingRequest, registry: RegistryDep, settings: SettingsDep) -> Response:
    """Embed one text or a list of texts with the requested (or default) model.

    ``usage`` counts the tokens embedded (after truncation).
    """
    texts = _texts(request, settings)
    model = await registry.get(request.model)
    prefixes = [model.prefix(request.input_type)] * len(texts)
    vectors, tokens = await model.embed(texts, "input", Tokenizing(prefixes, request.truncate))
    vectors = _resize(vectors, request.dimensions, model)
    return Response(response_body(vectors, request.encoding_format, model.id, tokens), media_type="application/json")
