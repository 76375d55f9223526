"""The models the service holds in memory, how a request's ``model`` string finds one, and how long a version lives.

The registry is the one owner of model versions: it installs a new version, keeps every retired one that
something still needs, and releases the rest. A retired version is needed while a *version user* (the
index service: an index embedded with it) says so; ``release_grace_s`` after a swap, and whenever a user's
needs shrink (``collect``), the versions nobody needs are released. Requests that resolved a version
before it was released still finish on it (its batcher restarts its worker for them).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType

from xalign.modelstore import InvalidNameError, ModelStore, StoreError
from xalign.modelstore.aliases import validate_alias
from xalign.modelstore.refs import ModelRef, parse_ref
from xalign.runtime.senses.engine import SenseEngine
from xalign.service.errors import (
    INVALID_NAME,
    MODEL_NOT_FOUND,
    VERSION_NOT_FOUND,
    InvalidRequestError,
    NotFoundError,
    NotReadyError,
    UnprocessableError,
    from_store_error,
)
from xalign.service.loaded_model import EXPECTED_LOAD_ERRORS, LoadedModel, load_version
from xalign.service.metrics import Metrics
from xalign.service.settings import Settings, env_name

log = logging.getLogger("xalign.service")

# Called after a model is swapped to a new version: (name, old, new). Indexes re-embed from here.
SwapListener = Callable[[str, LoadedModel, LoadedModel], None]
# Says which versions of a model (by name) something still needs, e.g. the versions its indexes are embedded with.
VersionUser = Callable[[str], set[int]]


@dataclass(frozen=True)
class LoadFailure:
    """Why the last (re)load of a model failed, and when (UTC)."""

    message: str
    at: datetime


class ModelRegistry:
    """Loaded models by name; ``default_model`` (else the first served dual encoder) answers requests naming none."""

    def __init__(self, store: ModelStore, metrics: Metrics | None = None, default_model: str | None = None) -> None:
        self.store = store
        self.metrics = metrics
        # What a request without ``model`` gets (setting ``default_model``); None: the first served dual encoder.
        self.default_model = default_model
        # Names this replica must serve to be ready (/ready): the configured ones, else those in the store at start.
        self.required: tuple[str, ...] = ()
        # Seconds a retired version stays after a swap for requests that already hold it.
        self.release_grace_s = 1.0
        self._models: dict[str, LoadedModel] = {}
        self._failures: dict[str, LoadFailure] = {}
        self._installed_at: dict[str, datetime] = {}  # name → when its served version was installed (UTC)
        # Every version still held, current or retired (or loaded for an index embedded with it).
        self._versions: dict[tuple[str, int], LoadedModel] = {}
        self._listeners: list[SwapListener] = []
        self._users: list[VersionUser] = []
        # Name → how it is resolved in the store (as configured, or the production alias else the latest).
        self._refs: dict[str, ModelRef] = {}

    @classmethod
    def from_settings(cls, settings: Settings, metrics: Metrics | None = None) -> ModelRegistry:
        """Load every configured model (or every model in the store); failures are logged and kept."""
        registry = cls(ModelStore(settings.store), metrics, settings.default_model)
        refs = registry.configured_refs(settings)
        registry.required = tuple(dict.fromkeys(ref.name for ref in refs))
        for ref in refs:
            registry.load(ref, settings)
        if not registry.models:
            log.warning("no model could be loaded from %s: /ready answers 503 until one is", settings.store)
        return registry

    # --- what the store asks for (blocking: callers on the event loop use a worker thread) ---------

    def configured_refs(self, settings: Settings) -> list[ModelRef]:
        """The references to serve: the configured ones, else every model now in the store."""
        refs = [parse_ref(r) for r in settings.models] or [ModelRef(n) for n in self.store.models()]
        for ref in refs:
            self._refs.setdefault(ref.name, ref)
        return refs

    def reference(self, name: str) -> ModelRef | None:
        """How ``name`` is resolved in the store, if it is served or configured."""
        return self._refs.get(name)

    def follow(self, name: str) -> ModelRef:
        """Start serving ``name`` as its production alias (else its latest version) resolves it."""
        return self._refs.setdefault(name, ModelRef(name))

    # --- loading ------------------------------------------------------------------------------------

    def load(self, ref: ModelRef, settings: Settings) -> None:
        """Load, verify and smoke-check ``ref``; on failure keep what was served and record why."""
        try:
            loaded = self.prepare(ref, settings)
        except EXPECTED_LOAD_ERRORS as exc:
            self.record_failure(ref.name, str(exc))
            return
        self.install(ref.name, loaded)

    def prepare(self, ref: ModelRef, settings: Settings) -> LoadedModel:
        """Open the version ``ref`` resolves to and smoke-check it, without serving it (blocking: seconds)."""
        return load_version(self.store, ref, settings, self.metrics)

    def record_failure(self, name: str, message: str) -> None:
        """Remember why ``name`` could not be (re)loaded; the served version, if any, stays."""
        self._failures[name] = LoadFailure(message, datetime.now(UTC))
        if self.metrics is not None:
            self.metrics.load_failures.labels(name).inc()
        log.error("cannot load %s: %s", name, message)

    def clear_failure(self, name: str) -> None:
        """Forget the last load failure of ``name``."""
        self._failures.pop(name, None)

    def install(self, name: str, loaded: LoadedModel) -> None:
        """Make ``loaded`` the served version of ``name``; tell listeners if it replaced another (on the loop)."""
        old = self._models.get(name)
        self._versions[(name, loaded.manifest.version)] = loaded
        # One dict assignment: requests that already hold ``old`` finish on it, new ones get ``loaded``.
        self._models[name] = loaded
        self._installed_at[name] = datetime.now(UTC)
        self.clear_failure(name)
        if self.metrics is not None:
            self.metrics.loaded_version.labels(name).set(loaded.manifest.version)
        log.info("serving %s (%s, %s)", loaded.id, loaded.variant, loaded.encoder.provider)
        if old is not None and old.manifest.version != loaded.manifest.version:
            for listener in self._listeners:
                listener(name, old, loaded)
            self._collect_later(name)

    # --- what is served -----------------------------------------------------------------------------

    @property
    def models(self) -> Mapping[str, LoadedModel]:
        """The served version of each model, by name (a read-only view)."""
        return MappingProxyType(self._models)

    @property
    def errors(self) -> Mapping[str, str]:
        """Why the last (re)load of each model failed, by name; the served version, if any, keeps serving."""
        return {name: failure.message for name, failure in self._failures.items()}

    def current(self, name: str) -> LoadedModel | None:
        """The served version of ``name``, if any."""
        return self._models.get(name)

    def served(self) -> list[tuple[LoadedModel, datetime | None]]:
        """Every served version with when it was installed (UTC)."""
        return [(loaded, self._installed_at.get(name)) for name, loaded in self._models.items()]

    def missing(self) -> list[str]:
        """The models this replica must serve (``required``) and serves no version of."""
        return [name for name in self.required if name not in self._models]

    def failures(self) -> dict[str, LoadFailure]:
        """The last load failure of each model that has one."""
        return dict(self._failures)

    async def aliases(self, name: str) -> dict[str, int]:
        """Alias → version of ``name`` in the store (read on a worker thread)."""
        return await asyncio.to_thread(self.store.aliases, name)

    # --- how a request finds its model --------------------------------------------------------------

    async def get(self, model: str | None, param: str = "model") -> LoadedModel:
        """The loaded model a request names (``name``, ``name:VERSION``, ``name@ALIAS``) or the default.

        422 naming the rule for a malformed name or alias, 404 for a model not served or another version
        (naming ``param``, the request field that holds the reference). A version or an alias is checked
        against the store on a worker thread.
        """
        if not self._models:
            raise NotReadyError("no model is loaded yet", code="no_model_loaded")
        if model is None:
            return await self.default()
        ref = _parse(model, param)
        loaded = self._models.get(ref.name)
        if loaded is None:
            serving = sorted(self._models)
            raise NotFoundError(f"model {ref.name!r} is not served (serving: {serving})", param, code=MODEL_NOT_FOUND)
        if ref.version is not None and ref.version == loaded.manifest.version:
            return loaded  # versions are immutable: the loaded one exists, no look-up (thread hop, disk) needed
        if (ref.version or ref.alias) and await self._resolve(ref, param) != loaded.manifest.version:
            raise NotFoundError(f"{ref} is not the loaded version ({loaded.id})", param, code=VERSION_NOT_FOUND)
        return loaded

    async def _resolve(self, ref: ModelRef, param: str) -> int:
        """The version ``ref`` names in the store (on a worker thread); 404 naming ``param`` if there is none."""
        try:
            return await asyncio.to_thread(self.store.resolve, ref)
        except StoreError as exc:
            raise from_store_error(exc, param) from None

    async def default(self) -> LoadedModel:
        """The model of requests that name none: ``default_model`` if set, else the first served dual encoder.

        "First" follows the configured order (``models``), else the store's (alphabetical). A Backpack is the
        default only when configured: its small dimension and token limit would surprise an embeddings client.
        """
        if self.default_model is not None:
            return await self.get(self.default_model)
        for name in self._refs:
            loaded = self._models.get(name)
            if loaded is not None and loaded.manifest.family == "dual-encoder":
                return loaded
        raise InvalidRequestError(
            f"no dual encoder is served, so there is no default model: name one in 'model' (serving: "
            f"{sorted(self._models)}) or set {env_name('default_model')}",
            "model",
            code="no_default_model",
        )

    async def get_senses(self, model: str | None) -> tuple[LoadedModel, SenseEngine]:
        """The model a senses request names, else the first loaded one with senses; 400 if it has none."""
        if model is None:
            with_senses = [m for n in self._refs if (m := self._models.get(n)) is not None and m.senses is not None]
            loaded = with_senses[0] if with_senses else await self.get(None)
        else:
            loaded = await self.get(model)
        if loaded.senses is None:
            raise InvalidRequestError(
                f"{loaded.id} is a {loaded.manifest.family} model and has no senses: /v1/senses needs a backpack",
                "model",
                code="model_has_no_senses",
            )
        return loaded, loaded.senses

    # --- how long a version lives -------------------------------------------------------------------

    def add_swap_listener(self, listener: SwapListener) -> None:
        """Call ``listener(name, old, new)`` after every swap."""
        self._listeners.append(listener)

    def remove_swap_listener(self, listener: SwapListener) -> None:
        """Stop calling ``listener`` (no error if it was not added)."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def add_version_user(self, user: VersionUser) -> None:
        """Keep every retired version that ``user(name)`` names; ``collect`` when its needs shrink."""
        self._users.append(user)

    def remove_version_user(self, user: VersionUser) -> None:
        """Forget ``user``: what only it needed is released at the next ``collect``."""
        if user in self._users:
            self._users.remove(user)

    def get_version(self, name: str, version: int) -> LoadedModel | None:
        """A held version of ``name`` (current, retired, or loaded for an index), if it is still loaded."""
        return self._versions.get((name, version))

    def hold(self, loaded: LoadedModel) -> None:
        """Keep ``loaded`` beside the served version (an index embedded with it); ``collect`` releases it."""
        self._versions[(loaded.manifest.name, loaded.manifest.version)] = loaded

    def collect(self, name: str) -> None:
        """Release every retired version of model ``name`` that no version user needs any more."""
        needed = set[int]().union(*(user(name) for user in self._users))
        for model, version in list(self._versions):
            if model == name and version not in needed:
                self.release(model, version)

    def _collect_later(self, name: str) -> None:
        # A swap off the event loop (none runs) leaves the retired version to the next collect.
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        loop.call_later(self.release_grace_s, self.collect, name)

    def release(self, name: str, version: int) -> None:
        """Drop a retired version once nothing new needs it: its queue drains, then its worker ends.

        Requests that resolved it before still finish on it (its batcher restarts its worker for them);
        its session is freed with the last reference. The current version is never dropped. Safe to call
        from any thread.
        """
        current = self._models.get(name)
        if current is not None and current.manifest.version == version:
            return
        released = self._versions.pop((name, version), None)
        if released is not None:
            released.batcher.close_soon()
            log.info("released %s", released.id)

    async def close(self) -> None:
        """Drain and stop every held version's batcher (shutdown)."""
        for loaded in list(self._versions.values()):
            await loaded.batcher.close()


def _parse(model: str, param: str) -> ModelRef:
    """A request's model reference, or 422 naming the rule its name or alias breaks (and ``param``)."""
    try:
        ref = parse_ref(model)
        if ref.alias is not None and ref.alias != "latest":
            validate_alias(ref.alias)
    except InvalidNameError as exc:
        raise UnprocessableError(str(exc), param, code=INVALID_NAME) from None
    return ref
