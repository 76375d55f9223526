"""``IndexService``: the persistent indexes joined to the served models (embedding, versions, re-embedding).

An index is always searched and extended in the space of the model version that embedded it: the
served version when they agree, else the old version, still held by the registry (after a swap, or
loaded at a restart for an index left behind) until the background re-embedding
(``service/search/reembed.py``) has moved the index to the served version. The registry owns every
version's lifetime: this service only tells it which versions its indexes need (``needed_versions``)
and asks it to collect when that shrinks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from xalign.modelstore import InvalidNameError
from xalign.modelstore.names import validate_index_name
from xalign.modelstore.refs import ModelRef
from xalign.service.errors import INVALID_NAME, ConflictError, NotFoundError, NotReadyError, UnprocessableError
from xalign.service.loaded_model import EXPECTED_LOAD_ERRORS, LoadedModel
from xalign.service.registry import ModelRegistry
from xalign.service.search.faiss_index import FloatArray, validate_params
from xalign.service.search.index_store import (
    Hit,
    IndexExistsError,
    IndexStore,
    StaleGenerationError,
    StoredIndex,
    UnknownIndexError,
)
from xalign.service.search.persistence import IndexKind, IndexMeta
from xalign.service.search.reembed import Reembedding, reembed
from xalign.service.search.snapshot import SnapshotPolicy
from xalign.service.settings import Settings

log = logging.getLogger("xalign.service")


def check_index_name(name: str, param: str) -> str:
    """``name`` if it is a valid index name, else 422 naming the rule it breaks (before any file is touched)."""
    try:
        return validate_index_name(name)
    except InvalidNameError as exc:
        raise UnprocessableError(str(exc), param, code=INVALID_NAME) from None


class IndexService:
    """Create, extend, search, describe and delete indexes; re-embed them after model swaps."""

    def __init__(self, store: IndexStore, registry: ModelRegistry, settings: Settings) -> None:
        self.store = store
        self.registry = registry
        self.settings = settings
        self.status: dict[str, Reembedding] = {}
        self._write_locks: dict[str, asyncio.Lock] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    async def open(cls, settings: Settings, registry: ModelRegistry) -> IndexService:
        """Load every index under ``settings.data_dir`` and start following model swaps."""
        policy = SnapshotPolicy(rows=settings.index_snapshot_rows, build_s=settings.index_snapshot_build_s)
        store = await asyncio.to_thread(IndexStore.open, settings.data_dir / "indexes", policy)
        service = cls(store, registry, settings)
        await service.start()
        return service

    async def start(self) -> None:
        """Listen for swaps; re-embed indexes built by a version other than the one served now."""
        self._loop = asyncio.get_running_loop()
        self.registry.add_version_user(self.needed_versions)
        self.registry.add_swap_listener(self.on_swap)
        for name in self.store.names():
            await self._catch_up(self.store.get(name))

    async def _catch_up(self, index: StoredIndex) -> None:
        meta = index.meta
        current = self.registry.current(meta.model)
        if current is None or current.manifest.version == meta.model_version:
            return
        if self.registry.get_version(meta.model, meta.model_version) is None:
            ref = ModelRef(meta.model, version=meta.model_version)
            try:
                self.registry.hold(await asyncio.to_thread(self.registry.prepare, ref, self.settings))
            except EXPECTED_LOAD_ERRORS as exc:
                log.warning("index %s: cannot load %s to search it before re-embedding: %s", meta.name, ref, exc)
        self._schedule(index, current)

    async def close(self) -> None:
        """Stop re-embeddings (they restart on the next start), stop listening, close the logs.

        The versions the indexes needed stay with the registry, which closes them at shutdown.
        """
        self.registry.remove_swap_listener(self.on_swap)
        self.registry.remove_version_user(self.needed_versions)
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.to_thread(self.store.close)

    # --- models and versions -------------------------------------------------------------------

    def model_for(self, meta: IndexMeta) -> LoadedModel:
        """The loaded version that embedded the index: its queries and adds must be embedded by it."""
        return self.model_for_space(meta.model, meta.model_version, meta.name)

    def model_for_space(self, model: str, version: int, index: str | None = None) -> LoadedModel:
        """The loaded version ``model:version`` (served, retired but held, or loaded for an index), else 503."""
        loaded = self.registry.get_version(model, version)
        if loaded is None:
            what = f"index {index!r} was embedded with" if index else "the indexes were embedded with"
            raise NotReadyError(
                f"{what} {model}:{version}, which is not loaded; "
                "it becomes searchable once re-embedded with the served version"
            )
        return loaded

    def needed_versions(self, model: str) -> set[int]:
        """The versions of ``model`` that indexes are embedded with now (the registry keeps them loaded)."""
        return {index.meta.model_version for index in self.all() if index.meta.model == model}

    def on_swap(self, name: str, _old: LoadedModel, new: LoadedModel) -> None:
        """Registry swap listener (any thread): re-embed the indexes of ``name`` with ``new``."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._swapped, name, new)

    def _swapped(self, name: str, new: LoadedModel) -> None:
        for index in self.all():
            if index.meta.model == name and index.meta.model_version != new.manifest.version:
                self._schedule(index, new)

    # --- re-embedding ------------------------------------------------------------------------------

    def _schedule(self, index: StoredIndex, model: LoadedModel) -> None:
        """Start re-embedding ``index`` with ``model``, replacing a re-embedding towards another version."""
        name = index.meta.name
        running = self._tasks.pop(name, None)
        if running is not None:
            running.cancel()
        status = Reembedding(state="running", target_version=model.manifest.version, done=0, total=index.count)
        self.status[name] = status
        assert self._loop is not None
        task = self._loop.create_task(self._reembed(index, model, status), name=f"re-embed {name}")
        self._tasks[name] = task

    async def _reembed(self, index: StoredIndex, model: LoadedModel, status: Reembedding) -> None:
        name = index.meta.name
        chunk = max(1, min(4 * self.settings.batch_size, self.settings.max_queue // 2))
        try:
            await reembed(index, model, self._lock(name), status, chunk)
            log.info("index %s re-embedded with %s (%d rows)", name, model.id, index.count)
            if self.status.get(name) is status:
                del self.status[name]
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the index keeps serving with its old version; a restart retries
            log.exception("re-embedding index %s with %s failed", name, model.id)
            status.state, status.error = "failed", f"{type(exc).__name__}; see the server log"
        finally:
            if self._tasks.get(name) is asyncio.current_task():
                del self._tasks[name]
            self.registry.collect(model.manifest.name)

    def _lock(self, name: str) -> asyncio.Lock:
        return self._write_locks.setdefault(name, asyncio.Lock())

    # --- operations --------------------------------------------------------------------------------

    def all(self) -> list[StoredIndex]:
        """Every index, by name."""
        indexes = []
        for name in self.store.names():
            with contextlib.suppress(UnknownIndexError):  # deleted meanwhile
                indexes.append(self.store.get(name))
        return indexes

    def reembedding(self, name: str) -> Reembedding | None:
        """The progress of the background re-embedding of index ``name``, if one runs (or failed)."""
        return self.status.get(name)

    def get(self, name: str) -> StoredIndex:
        """The index ``name``; 422 naming the rule if ``name`` is not a valid index name, 404 if none."""
        check_index_name(name, "name")
        try:
            return self.store.get(name)
        except UnknownIndexError:
            raise NotFoundError(f"index {name!r} does not exist", "name", code="index_not_found") from None

    async def create(self, name: str, model: str | None, kind: IndexKind, params: dict[str, Any] | None) -> StoredIndex:
        """A new empty index embedded by ``model`` (default: the default model), or 400/409/422."""
        check_index_name(name, "name")
        try:
            full_params = validate_params(kind, params)
        except ValueError as exc:
            raise UnprocessableError(str(exc), "params") from None
        loaded = await self.registry.get(model)
        manifest = loaded.manifest
        meta = IndexMeta(
            name=name, model=manifest.name, model_version=manifest.version, dim=manifest.embedding_dim,
            kind=kind, params=full_params,
        )  # fmt: skip
        try:
            return await asyncio.to_thread(self.store.create, meta)
        except IndexExistsError:
            raise ConflictError(f"index {name!r} exists already", "name", code="index_exists") from None

    async def add(self, name: str, texts: list[str]) -> tuple[list[int], int, str]:
        """Embed and durably store ``texts``: (their ids, tokens used, the model version id that embedded them)."""
        index = self.get(name)
        while True:
            meta = index.meta
            model = self.model_for(meta)
            embedded = await self._embed_for(index, model, texts)
            if embedded is None:
                continue
            vectors, tokens = embedded
            async with self._lock(name):
                if self.get(name) is not index:
                    raise NotFoundError(f"index {name!r} was deleted", "name", code="index_not_found")
                try:
                    ids = await asyncio.to_thread(index.append, texts, vectors, meta.generation)
                except StaleGenerationError:
                    continue  # re-embedded with a new version while we embedded: embed again with it
                return ids, tokens, model.id

    async def search(self, name: str, queries: list[str], k: int) -> tuple[list[list[Hit]], int, str]:
        """Top-k hits per query (cosine), the tokens used, and the model version id that embedded them."""
        index = self.get(name)
        while True:
            model = self.model_for(index.meta)
            embedded = await self._embed_for(index, model, queries)
            if embedded is None:
                continue
            vectors, tokens = embedded
            try:
                hits = await asyncio.to_thread(index.search, vectors, k, model.manifest.version)
            except StaleGenerationError:
                continue
            return hits, tokens, model.id

    async def _embed_for(
        self, index: StoredIndex, model: LoadedModel, texts: list[str]
    ) -> tuple[FloatArray, int] | None:
        """Embed with the index's version; None if the index moved to another version meanwhile (retry)."""
        try:
            return await model.embed(texts)
        except NotReadyError:
            # The old version was released because the index was just re-embedded: retry with the new one.
            if index.meta.model_version != model.manifest.version:
                return None
            raise

    async def vectors(self, name: str) -> tuple[list[str], FloatArray, IndexMeta]:
        """All texts (n,), vectors (n, dim) and the metadata of an index, taken consistently (copies).

        The vectors are copied out of the FAISS index (the only place they are held) on a worker thread.
        """
        return await asyncio.to_thread(self.get(name).contents)

    async def delete(self, name: str) -> None:
        """Delete an index, stopping its re-embedding first."""
        index = self.get(name)
        task = self._tasks.pop(name, None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        async with self._lock(name):
            try:
                await asyncio.to_thread(self.store.delete, name)
            except UnknownIndexError:
                raise NotFoundError(f"index {name!r} does not exist", "name", code="index_not_found") from None
        self._write_locks.pop(name, None)
        self.status.pop(name, None)
        self.registry.collect(index.meta.model)
