"""``IndexService``: the persistent indexes joined to the served models (embedding, versions, re-embedding).

An index is always searched and extended in the space of the model version that embedded it: the
served version when they agree, else the old version, still held (by the registry after a swap, or
loaded here after a restart) until the background re-embedding (``service.search.reembed``) has moved
the index to the served version. Then the old version is released.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from xalign.modelstore import InvalidNameError
from xalign.modelstore.names import validate_index_name
from xalign.modelstore.refs import ModelRef
from xalign.service.errors import ConflictError, NotFoundError, NotReadyError, UnprocessableError
from xalign.service.registry import EXPECTED_LOAD_ERRORS, LoadedModel, ModelRegistry
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
from xalign.service.search.reembed import ReembedStatus, reembed
from xalign.service.settings import Settings

log = logging.getLogger("xalign.service")


def check_index_name(name: str, param: str) -> str:
    """``name`` if it is a valid index name, else 422 naming the rule it breaks (before any file is touched)."""
    try:
        return validate_index_name(name)
    except InvalidNameError as exc:
        raise UnprocessableError(str(exc), param) from None


class IndexService:
    """Create, extend, search, describe and delete indexes; re-embed them after model swaps."""

    def __init__(
        self, store: IndexStore, registry: ModelRegistry, settings: Settings, release_grace_s: float = 1.0
    ) -> None:
        self.store = store
        self.registry = registry
        self.settings = settings
        # Seconds a retired version stays after a swap for requests that already hold it.
        self.release_grace_s = release_grace_s
        self.status: dict[str, ReembedStatus] = {}
        self._write_locks: dict[str, asyncio.Lock] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        # Old versions loaded here (not by the registry) for indexes found stale at startup.
        self._held: dict[tuple[str, int], LoadedModel] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    async def open(cls, settings: Settings, registry: ModelRegistry) -> IndexService:
        """Load every index under ``settings.data_dir`` and start following model swaps."""
        store = await asyncio.to_thread(IndexStore.open, settings.data_dir / "indexes")
        service = cls(store, registry, settings)
        await service.start()
        return service

    async def start(self) -> None:
        """Listen for swaps; re-embed indexes built by a version other than the one served now."""
        self._loop = asyncio.get_running_loop()
        self.registry.listeners.append(self.on_swap)
        for name in self.store.names():
            await self._catch_up(self.store.get(name))

    async def _catch_up(self, index: StoredIndex) -> None:
        meta = index.meta
        current = self.registry.models.get(meta.model)
        if current is None or current.manifest.version == meta.model_version:
            return
        if self._holder(meta.model, meta.model_version) is None:
            ref = ModelRef(meta.model, version=meta.model_version)
            try:
                loaded = await asyncio.to_thread(self.registry.prepare, ref, self.settings)
                self._held[(meta.model, meta.model_version)] = loaded
            except EXPECTED_LOAD_ERRORS as exc:
                log.warning("index %s: cannot load %s to search it before re-embedding: %s", meta.name, ref, exc)
        self._schedule(index, current)

    async def close(self) -> None:
        """Stop re-embeddings (they restart on the next start), stop listening, close logs and held versions."""
        with contextlib.suppress(ValueError):
            self.registry.listeners.remove(self.on_swap)
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.to_thread(self.store.close)
        for loaded in self._held.values():
            await loaded.batcher.close()
        self._held.clear()

    # --- models and versions -------------------------------------------------------------------

    def _holder(self, model: str, version: int) -> LoadedModel | None:
        current = self.registry.models.get(model)
        if current is not None and current.manifest.version == version:
            return current
        return self.registry.get_version(model, version) or self._held.get((model, version))

    def model_for(self, meta: IndexMeta) -> LoadedModel:
        """The loaded version that embedded the index: its queries and adds must be embedded by it."""
        return self.model_for_space(meta.model, meta.model_version, meta.name)

    def model_for_space(self, model: str, version: int, index: str | None = None) -> LoadedModel:
        """The loaded version ``model:version`` (served, retired but held, or held here), else a 503."""
        loaded = self._holder(model, version)
        if loaded is None:
            what = f"index {index!r} was embedded with" if index else "the indexes were embedded with"
            raise NotReadyError(
                f"{what} {model}:{version}, which is not loaded; "
                "it becomes searchable once re-embedded with the served version"
            )
        return loaded

    def on_swap(self, name: str, _old: LoadedModel, new: LoadedModel) -> None:
        """Registry swap listener (any thread): re-embed the indexes of ``name`` with ``new``."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._swapped, name, new)

    def _swapped(self, name: str, new: LoadedModel) -> None:
        for index_name in self.store.names():
            index = self.store.get(index_name)
            if index.meta.model == name and index.meta.model_version != new.manifest.version:
                self._schedule(index, new)
        assert self._loop is not None
        self._loop.call_later(self.release_grace_s, self.collect, name)

    def collect(self, name: str) -> None:
        """Release every retired version of model ``name`` that no index needs any more."""
        current = self.registry.models.get(name)
        needed = {self.store.get(n).meta.model_version for n in self.store.names() if self._model_of(n) == name}
        for model, version in list(self.registry.versions):
            if model == name and version not in needed and (current is None or current.manifest.version != version):
                self.registry.release(model, version)
        for key in [k for k in self._held if k[0] == name and k[1] not in needed]:
            self._held.pop(key).batcher.close_soon()

    def _model_of(self, name: str) -> str | None:
        with contextlib.suppress(UnknownIndexError):
            return self.store.get(name).meta.model
        return None

    # --- re-embedding ------------------------------------------------------------------------------

    def _schedule(self, index: StoredIndex, model: LoadedModel) -> None:
        """Start re-embedding ``index`` with ``model``, replacing a re-embedding towards another version."""
        name = index.meta.name
        running = self._tasks.pop(name, None)
        if running is not None:
            running.cancel()
        status = ReembedStatus(target_version=model.manifest.version, total=index.count)
        self.status[name] = status
        assert self._loop is not None
        task = self._loop.create_task(self._reembed(index, model, status), name=f"re-embed {name}")
        self._tasks[name] = task

    async def _reembed(self, index: StoredIndex, model: LoadedModel, status: ReembedStatus) -> None:
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
            self.collect(model.manifest.name)

    def _lock(self, name: str) -> asyncio.Lock:
        return self._write_locks.setdefault(name, asyncio.Lock())

    # --- operations --------------------------------------------------------------------------------

    def get(self, name: str) -> StoredIndex:
        """The index ``name``; 422 naming the rule if ``name`` is not a valid index name, 404 if none."""
        check_index_name(name, "name")
        try:
            return self.store.get(name)
        except UnknownIndexError:
            raise NotFoundError(f"index {name!r} does not exist", "name") from None

    async def create(self, name: str, model: str | None, kind: IndexKind, params: dict[str, Any] | None) -> StoredIndex:
        """A new empty index embedded by ``model`` (default: the default model), or 400/409/422."""
        check_index_name(name, "name")
        try:
            full_params = validate_params(kind, params)
        except ValueError as exc:
            raise UnprocessableError(str(exc), "params") from None
        loaded = self.registry.get(model)
        manifest = loaded.manifest
        meta = IndexMeta(
            name=name, model=manifest.name, model_version=manifest.version, dim=manifest.embedding_dim,
            kind=kind, params=full_params,
        )  # fmt: skip
        try:
            return await asyncio.to_thread(self.store.create, meta)
        except IndexExistsError:
            raise ConflictError(f"index {name!r} exists already", "name") from None

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
                    raise NotFoundError(f"index {name!r} was deleted", "name")
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

    def vectors(self, name: str) -> tuple[list[str], FloatArray, IndexMeta]:
        """All texts (n,), vectors (n, dim) and the metadata of an index, taken consistently (copies)."""
        return self.get(name).snapshot()

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
                raise NotFoundError(f"index {name!r} does not exist", "name") from None
        self._write_locks.pop(name, None)
        self.status.pop(name, None)
        self.collect(index.meta.model)
