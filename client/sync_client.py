"""The blocking client."""

from __future__ import annotations

from types import TracebackType
from typing import Unpack

import httpx

from xalign.client.client_base import ClientCalls
from xalign.client.jobs_resource import SyncJobs
from xalign.client.options import ClientSettings, client_options
from xalign.client.sync_runner import SyncRunner


class Client(ClientCalls[SyncRunner]):
    """A typed client of the xalign HTTP API for what the OpenAI client does not cover.

    ``api_key=None`` reads ``XALIGN_API_KEY`` (when the client is made); the key is sent as
    ``Authorization: Bearer``. Keyword arguments: ``timeout`` (seconds or ``httpx.Timeout``), ``max_retries``
    (default 3: 429 and 503 are retried honouring ``Retry-After``), ``headers``; ``transport`` is httpx's.

    >>> from xalign.client import Client
    >>> with Client("http://127.0.0.1:8000", api_key="sk-...") as client:
    ...     client.models.list().data[0].id
    ...     client.similarity([("the cat", "die Katze")]).scores
    'tiny:1'
    [0.83]
    """

    def __init__(
        self, base_url: str, api_key: str | None = None, *, transport: httpx.BaseTransport | None = None,
        **settings: Unpack[ClientSettings],
    ) -> None:  # fmt: skip
        super().__init__(SyncRunner(client_options(base_url, api_key, **settings), transport))
        self.jobs = SyncJobs(self._runner)

    def close(self) -> None:
        """Close the connection pool (also done by leaving a ``with`` block)."""
        self._runner.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
