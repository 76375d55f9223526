"""Re-embedding an index with a new model version, in the background, without losing concurrent adds.

Protocol (one index, old version a → new version b):

1. A new generation (its own log file) is started; the index keeps serving generation a.
2. The texts stored so far are embedded with b in chunks and appended to the new generation. Adds that
   arrive meanwhile go on being embedded with a and written to generation a (acknowledged as usual).
3. Catch-up: the rows added since are embedded with b, outside the index's write lock while the
   remainder is large; once it is small (or after a few rounds), under the write lock, so no add can
   slip in between the last catch-up and the switch.
4. Switch: meta.json is rewritten atomically to name generation b, then the old log is deleted. A crash
   before the rename leaves generation a in use (the half-written b log is deleted on open); after it, b.

So adds during a re-embedding are embedded once with the old version and later once more with the new
one; none is lost, and each is visible to searches as soon as it is acknowledged.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal

import numpy as np

from xalign.service.errors import OverloadedError, PayloadTooLargeError
from xalign.service.loaded_model import LoadedModel
from xalign.service.search.faiss_index import FloatArray
from xalign.service.search.index_store import Generation, StaleGenerationError, StoredIndex

# Rounds of catch-up outside the write lock before the rest is done under it (bounds the work under load).
OPTIMISTIC_ROUNDS = 3


@dataclass(kw_only=True)
class Reembedding:
    """A background re-embedding with a newer model version."""

    # The progress of one index's re-embedding, shown as is by ``GET /v1/indexes/{name}`` (fields in that order).
    state: Literal["running", "failed"]
    target_version: int
    done: int
    total: int
    error: str | None = None


async def embed_retrying(model: LoadedModel, texts: list[str]) -> FloatArray:
    """Embed ``texts`` (n,) → (n, dim), waiting and retrying while the model's queue is full.

    A chunk over the per-request token maximum (a deployment that lowered it below a chunk of long texts)
    is embedded in halves rather than failing the whole re-embedding.
    """
    delay = 0.05
    while True:
        try:
            vectors, _ = await model.embed(texts)
            return np.asarray(vectors, dtype=np.float32)
        except PayloadTooLargeError:
            if len(texts) < 2:
                raise
            half = len(texts) // 2
            first, second = await embed_retrying(model, texts[:half]), await embed_retrying(model, texts[half:])
            return np.concatenate([first, second])  # (n, dim)
        except OverloadedError:
            # Background work yields to client requests: back off rather than fail.
            await asyncio.sleep(delay)
            delay = min(2 * delay, 2.0)


async def reembed(
    index: StoredIndex, model: LoadedModel, write_lock: asyncio.Lock, status: Reembedding, chunk: int
) -> None:
    """Re-embed every text of ``index`` with ``model`` and switch the index to it (see the module doc)."""
    new = await asyncio.to_thread(index.begin_generation, model.manifest.version)
    try:
        await _fill(index, new, model, write_lock=write_lock, status=status, chunk=chunk)
    except BaseException:
        await asyncio.shield(asyncio.to_thread(index.discard_generation, new))
        raise


async def _fill(
    index: StoredIndex,
    new: Generation,
    model: LoadedModel,
    *,
    write_lock: asyncio.Lock,
    status: Reembedding,
    chunk: int,
) -> None:
    rounds = 0
    while True:
        # A copy of the texts not re-embedded yet: the whole index on the first round, so off the loop.
        missing = await asyncio.to_thread(index.texts, new.count)
        status.total = new.count + len(missing)
        if rounds >= OPTIMISTIC_ROUNDS or len(missing) <= chunk:
            async with write_lock:
                await _extend(new, model, await asyncio.to_thread(index.texts, new.count), status, chunk)
                try:
                    await asyncio.to_thread(index.commit_generation, new)
                except StaleGenerationError:
                    pass  # an add cancelled by its client was still being written: catch it up too
                else:
                    return
        else:
            await _extend(new, model, missing, status, chunk)
        rounds += 1


async def _extend(new: Generation, model: LoadedModel, texts: list[str], status: Reembedding, chunk: int) -> None:
    """Embed ``texts`` with ``model`` chunk by chunk and append them to the new generation."""
    for start in range(0, len(texts), chunk):
        part = texts[start : start + chunk]
        vectors = await embed_retrying(model, part)
        await asyncio.to_thread(new.append, part, vectors)
        status.done = new.count
