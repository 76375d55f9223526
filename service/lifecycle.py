"""New model versions without downtime: a watcher polls the store and an admin route reloads on demand.

Swap protocol. The version a model's reference resolves to now (as configured, else the production
alias, else the latest) is compared with the served one. A different version is loaded beside the old
one on a worker thread (checksums verified, session built, smoke texts embedded and checked), then
installed with one dict assignment on the event loop: requests that already hold the old version
finish on it, even after it is released (a retired batcher still serves its holders, restarting its
worker for them), new ones get the new one: a swap costs no request. A
version that fails to load leaves the old one serving; the failure shows in ``GET /v1/models`` and in
``xalign_model_load_failures``, and the watcher does not retry that same version (versions are
immutable) — the reload route does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from xalign.modelstore import StoreError
from xalign.modelstore.refs import ModelRef
from xalign.service.errors import MODEL_NOT_FOUND, NotFoundError
from xalign.service.loaded_model import EXPECTED_LOAD_ERRORS, LoadedModel
from xalign.service.registry import ModelRegistry
from xalign.service.settings import Settings

log = logging.getLogger("xalign.service")


@dataclass(frozen=True)
class ReloadOutcome:
    """What one reload of one model did: the version before and after, and the error if it failed."""

    name: str
    previous: int | None
    version: int | None
    changed: bool
    error: str | None = None


class ModelWatcher:
    """Polls the store every ``poll_interval_s`` (0: never) and reloads models whose target changed."""

    def __init__(self, registry: ModelRegistry, settings: Settings) -> None:
        self.registry = registry
        self.settings = settings
        self._lock = asyncio.Lock()  # one reload at a time: the watcher and the admin route never race
        self._failed: set[tuple[str, int]] = set()  # versions that failed; immutable, so not retried by polls
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start polling in the background, if an interval is set."""
        if self.settings.poll_interval_s > 0 and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._poll_forever(), name="model watcher")

    async def stop(self) -> None:
        """Stop polling; a reload under way finishes first."""
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def _poll_forever(self) -> None:
        # Wait first: the lifespan has just loaded everything. The stop event ends the wait early.
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.poll_interval_s):
                    await self._stop.wait()
            if self._stop.is_set():
                return
            try:
                await self.poll_once()
            except Exception:  # a bad poll (store unreadable) must not end the watcher
                log.exception("polling the model store failed")

    async def poll_once(self) -> list[ReloadOutcome]:
        """Reload every model whose reference now resolves to another version (new models are loaded)."""
        refs = await asyncio.to_thread(self.registry.configured_refs, self.settings)
        return [await self._reload(ref, force=False) for ref in refs]

    async def reload(self, name: str) -> ReloadOutcome:
        """Reload ``name`` now (admin route), retrying a version that failed before."""
        ref = self.registry.reference(name)
        if ref is None:
            if self.settings.models or name not in await asyncio.to_thread(self.registry.store.models):
                raise NotFoundError(f"model {name!r} is not served", "name", code=MODEL_NOT_FOUND)
            ref = self.registry.follow(name)
        return await self._reload(ref, force=True)

    async def _reload(self, ref: ModelRef, *, force: bool) -> ReloadOutcome:
        async with self._lock:
            current = self.registry.current(ref.name)
            previous = None if current is None else current.manifest.version
            try:
                target = await asyncio.to_thread(self.registry.store.resolve, ref)
            except StoreError as exc:
                self.registry.record_failure(ref.name, str(exc))
                return ReloadOutcome(ref.name, previous, previous, changed=False, error=str(exc))
            if target == previous:
                # What the store asks for is served: an earlier failure (e.g. of a rolled-back version) is moot.
                self.registry.clear_failure(ref.name)
                return ReloadOutcome(ref.name, previous, previous, changed=False)
            if not force and (ref.name, target) in self._failed:
                return ReloadOutcome(
                    ref.name, previous, previous, changed=False, error=self.registry.errors.get(ref.name)
                )
            return await self._swap_to(ref, target, previous)

    async def _swap_to(self, ref: ModelRef, target: int, previous: int | None) -> ReloadOutcome:
        """Load ``target`` beside the served version and install it, or record why it cannot serve."""
        try:
            loaded = await self._candidate(ref, target)
        except EXPECTED_LOAD_ERRORS as exc:
            return self._failure(ref.name, target, previous, str(exc))
        except Exception as exc:  # whatever breaks a candidate, the old version keeps serving
            log.exception("loading %s:%s failed", ref.name, target)
            return self._failure(ref.name, target, previous, f"{type(exc).__name__}; see the server log")
        self._failed.discard((ref.name, target))
        self.registry.install(ref.name, loaded)
        return ReloadOutcome(ref.name, previous, target, changed=True)

    async def _candidate(self, ref: ModelRef, target: int) -> LoadedModel:
        # A retired version still held (e.g. after a rollback) is reused: it is loaded and was checked.
        held = self.registry.get_version(ref.name, target)
        if held is not None:
            return held
        # Pin the version: the alias may move again while we load.
        return await asyncio.to_thread(self.registry.prepare, ModelRef(ref.name, version=target), self.settings)

    def _failure(self, name: str, target: int, previous: int | None, message: str) -> ReloadOutcome:
        self._failed.add((name, target))
        self.registry.record_failure(name, f"version {target}: {message}")
        return ReloadOutcome(name, previous, previous, changed=False, error=message)
