"""Calls on texts: embeddings (as a NumPy array), tokenization, pair similarity and reranking."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any, Literal, TypedDict, Unpack

import httpx
import numpy as np
import numpy.typing as npt

from xalign.client.calls import Call, body, parsed
from xalign.client.endpoints import Endpoint, R, Resource
from xalign.client.wire import Usage, WireModel

FloatArray = npt.NDArray[np.float32]
InputType = Literal["query", "passage"]


class TokenizedText(WireModel):
    """One input as the model sees it: prefix and special tokens included, after truncation."""

    index: int
    ids: list[int]
    tokens: list[str]
    count: int
    truncated: bool


class Tokenization(WireModel):
    """``POST /v1/tokenize``'s answer: one entry per input, in input order."""

    object: str = "list"
    model: str
    data: list[TokenizedText]


class PairSimilarity(WireModel):
    """The cosine of pair ``index``."""

    index: int
    similarity: float


class SimilarityResult(WireModel):
    """``POST /v1/similarity``'s answer: one cosine per pair, in pair order."""

    object: str = "list"
    model: str
    data: list[PairSimilarity]
    usage: Usage

    @property
    def scores(self) -> list[float]:
        """The cosines in pair order."""
        return [entry.similarity for entry in sorted(self.data, key=lambda e: e.index)]


class RerankHit(WireModel):
    """Document ``index`` (its position in the request) and its score; ``document`` if it was asked for."""

    index: int
    relevance_score: float  # the cosine of the query's and the document's embeddings
    document: str | None = None


class RerankResult(WireModel):
    """``POST /v1/rerank``'s answer: results sorted by score, best first."""

    object: str = "rerank"
    model: str
    results: list[RerankHit]
    usage: Usage


def _vectors(response: httpx.Response) -> FloatArray:
    """The (n, dim) float32 rows of an embeddings answer, in input order (base64 or float lists)."""
    data: list[dict[str, Any]] = sorted(response.json()["data"], key=lambda entry: entry["index"])
    rows = [
        np.frombuffer(base64.b64decode(e["embedding"]), dtype="<f4")
        if isinstance(e["embedding"], str)
        else np.asarray(e["embedding"], dtype=np.float32)
        for e in data
    ]
    return np.stack(rows).astype(np.float32) if rows else np.empty((0, 0), dtype=np.float32)


class TextSettings(TypedDict, total=False):
    """The model and input type of a call on texts (the default model and no input type where absent)."""

    model: str
    input_type: InputType  # query or passage: the prefix the model's manifest defines for it


class EmbedSettings(TextSettings, total=False):
    """:class:`TextSettings` and the embedding's own options."""

    dimensions: int  # a Matryoshka size the model allows
    truncate: bool  # False: a text over the model's length answers 413 (input_too_long) instead of being cut


class TextCalls(Resource[R]):
    """The calls on texts of both clients: ``client.embed``, ``tokenize``, ``similarity``, ``rerank``."""

    @Endpoint
    @staticmethod
    def embed(input: str | Sequence[str], **settings: Unpack[EmbedSettings]) -> Call[FloatArray]:
        """Embeddings as a (n, dim) float32 array, rows in input order (a single text gives one row).

        A convenience: the OpenAI client (``openai.OpenAI(base_url=.../v1)``) remains the recommended way to embed.

        >>> client.embed(["hello world", "Hallo Welt"], model="tiny").shape
        (2, 32)
        >>> client.embed("a very long text ...", truncate=False)  # PayloadTooLargeError, code input_too_long
        """
        texts = [input] if isinstance(input, str) else list(input)
        return Call("POST", "/v1/embeddings", _vectors, json={"input": texts, "encoding_format": "base64", **settings})

    @Endpoint
    @staticmethod
    def tokenize(input: str | Sequence[str], **settings: Unpack[TextSettings]) -> Call[Tokenization]:
        """The ids and tokens each text becomes, exactly as the model sees them (prefix and special tokens).

        >>> client.tokenize(["hello", "Hallo"]).data[0].tokens
        ['[CLS]', 'q', 'u', ...]
        """
        texts = input if isinstance(input, str) else list(input)
        return Call("POST", "/v1/tokenize", parsed(Tokenization), json={"input": texts, **settings})

    @Endpoint
    @staticmethod
    def similarity(pairs: Sequence[tuple[str, str]], **settings: Unpack[TextSettings]) -> Call[SimilarityResult]:
        """The cosine of each pair of texts.

        >>> client.similarity([("the cat", "die Katze")]).scores
        [0.83]
        """
        json = {"pairs": [list(pair) for pair in pairs], **settings}
        return Call("POST", "/v1/similarity", parsed(SimilarityResult), json=json)

    @Endpoint
    @staticmethod
    def rerank(
        query: str, documents: Sequence[str], *, top_n: int | None = None, return_documents: bool = False,
        model: str | None = None,
    ) -> Call[RerankResult]:  # fmt: skip
        """``documents`` ranked by cosine to ``query``, best first (at most ``top_n``).

        >>> [hit.index for hit in client.rerank("cat", ["dog", "cat", "car"]).results]
        [1, 0, 2]
        """
        fields = body(top_n=top_n, model=model)
        json = {"query": query, "documents": list(documents), "return_documents": return_documents, **fields}
        return Call("POST", "/v1/rerank", parsed(RerankResult), json=json)
