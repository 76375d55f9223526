"""One test body for both clients of ``xalign.client``: a scenario is an async function taking a client, and
:func:`settle` / :func:`collect` read a result whether the client answered it directly or as an awaitable."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from xalign.client import AsyncClient, Client

FLAVOURS = ("sync", "async")
AnyClient = Client | AsyncClient


async def settle(result: Any) -> Any:
    """A sync client's result as is, an async client's awaited."""
    return await result if inspect.isawaitable(result) else result


async def collect(items: Any) -> list[Any]:
    """The items of an iterator or an async iterator."""
    if hasattr(items, "__aiter__"):
        return [item async for item in items]
    return list(items)


def run_with(flavour: str, scenario: Callable[[AnyClient], Awaitable[None]], base_url: str, **options: Any) -> None:
    """Run ``scenario`` with a ``flavour`` client of ``base_url`` (``options`` go to its constructor), then close it."""

    async def main() -> None:
        if flavour == "sync":
            with Client(base_url, **options) as client:
                await scenario(client)
        else:
            async with AsyncClient(base_url, **options) as aclient:
                await scenario(aclient)

    asyncio.run(main())
