"""The asyncio client: the same calls as :class:`xalign.client.Client`, each awaited."""

from __future__ import annotations

from types import TracebackType
from typing import Unpack

import httpx

from xalign.client.async_runner import AsyncRunner
from xalign.client.client_base import ClientCalls
from xalign.client.jobs_resource import AsyncJobs
from xalign.client.options import ClientSettings, client_options


class AsyncClient(ClientCalls[AsyncRunner]):
    """The asyncio twin of :class:`xalign.client.Client`: the same arguments and methods, each a coroutine
    (``jobs.stream_pairs`` an async iterator).

    >>> from xalign.client import AsyncClient
    >>> async with AsyncClient("http://127.0.0.1:8000") as client:
    ...     vectors = await client.embed(["hello", "Hallo"])
    ...     job = await client.jobs.create(["the cat"], ["die Katze"])
    ...     job = await client.jobs.wait(job.id)
    ...     pairs = [pair async for pair in client.jobs.stream_pairs(job.id)]
    """

    def __init__(
        self, base_url: str, api_key: str | None = None, *, transport: httpx.AsyncBaseTransport | None = None,
        **settings: Unpack[ClientSettings],
    ) -> None:  # fmt: skip
        super().__init__(AsyncRunner(client_options(base_url, api_key, **settings), transport))
        self.jobs = AsyncJobs(self._runner)

    async def close(self) -> None:
        """Close the connection pool (also done by leaving an ``async with`` block)."""
        await self._runner.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
