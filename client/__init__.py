"""The typed Python client of the xalign HTTP API (extra ``client``: ``pip install 'xalign[client]'``).

For what the OpenAI client does not cover: models (card, reload, promote, rollback), tokenization, similarity,
reranking, bitext mining and mining jobs, indexes and senses. Embeddings are here as a convenience
(a NumPy array); the OpenAI client remains the recommended way to embed.

>>> from xalign.client import Client, IndexSide
>>> client = Client("http://127.0.0.1:8000", api_key="sk-...")
>>> client.models.get("tiny").versions
[1, 2]
>>> client.rerank("cat", ["a dog", "die Katze"], top_n=1).results[0].index
1

:class:`AsyncClient` has the same methods, each awaited. Errors are :class:`XAlignError` subclasses, one per
status; 429 and 503 are retried honouring ``Retry-After``.
"""

from __future__ import annotations

from xalign.client.async_client import AsyncClient
from xalign.client.bitext_api import FilesSide, IndexSide, MineResult, Pair
from xalign.client.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InternalServerError,
    JobWaitTimeoutError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    RetryableStatusError,
    ServiceUnavailableError,
    UnprocessableEntityError,
    XAlignError,
)
from xalign.client.indexes_api import AddedTexts, DeletedIndex, IndexInfo, IndexList, Match, SearchResult
from xalign.client.jobs_api import Job, JobList, PairsPage
from xalign.client.models_api import AliasMove, ModelCard, ModelDetail, ModelList, ReloadResult
from xalign.client.senses_api import SensesResult
from xalign.client.sync_client import Client
from xalign.client.texts_api import RerankResult, SimilarityResult, Tokenization
from xalign.client.wire import Usage

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AddedTexts",
    "AliasMove",
    "AsyncClient",
    "AuthenticationError",
    "BadRequestError",
    "Client",
    "ConflictError",
    "DeletedIndex",
    "FilesSide",
    "IndexInfo",
    "IndexList",
    "IndexSide",
    "InternalServerError",
    "Job",
    "JobList",
    "JobWaitTimeoutError",
    "Match",
    "MineResult",
    "ModelCard",
    "ModelDetail",
    "ModelList",
    "NotFoundError",
    "Pair",
    "PairsPage",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitError",
    "ReloadResult",
    "RerankResult",
    "RetryableStatusError",
    "SearchResult",
    "SensesResult",
    "ServiceUnavailableError",
    "SimilarityResult",
    "Tokenization",
    "UnprocessableEntityError",
    "Usage",
    "XAlignError",
]
