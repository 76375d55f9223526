"""The models the service holds in memory, and how a request's ``model`` string finds one."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.concurrency import run_in_threadpool

from modelstore import Manifest, ModelStore, StoreError
from modelstore.refs import ModelRef, parse_ref
from service.engine.onnx_encoder import OnnxEncoder, Vectors
from service.errors import NotFoundError, NotReadyError
from service.settings import Settings

log = logging.getLogger("xalign.service")


@dataclass(frozen=True)
class LoadedModel:
    """One served model version with its encoder."""

    manifest: Manifest
    encoder: OnnxEncoder
    variant: str

    @property
    def id(self) -> str:
        """The id clients see: ``name:version``."""
        return f"{self.manifest.name}:{self.manifest.version}"

    async def embed(self, texts: list[str]) -> tuple[Vectors, int]:
        """Embed ``texts`` off the event loop: (n,) → ((n, dim) unit vectors, token count)."""
        return await run_in_threadpool(self.encoder.embed, texts)


# Called after a model is swapped to a new version: (name, old, new). Indexes re-embed from here.
SwapListener = Callable[[str, "LoadedModel", "LoadedModel"], None]


@dataclass
class ModelRegistry:
    """Loaded models by name; the first is the default for requests that name none."""

    store: ModelStore
    models: dict[str, LoadedModel] = field(default_factory=dict)
    # Name → the reason its last load failed, shown in /v1/models.
    errors: dict[str, str] = field(default_factory=dict)
    # Every version still held, current or retired: indexes built with an old one are searched with it
    # until they are re-embedded (DESIGN.md §5).
    versions: dict[tuple[str, int], LoadedModel] = field(default_factory=dict)
    listeners: list[SwapListener] = field(default_factory=list)

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelRegistry:
        """Load every configured model (or every model in the store); failures are logged and kept."""
        registry = cls(store=ModelStore(settings.store))
        refs = [parse_ref(r) for r in settings.models] or [ModelRef(n) for n in registry.store.models()]
        for ref in refs:
            registry.load(ref, settings)
        if not registry.models:
            log.warning("no model could be loaded from %s: /ready answers 503 until one is", settings.store)
        return registry

    def load(self, ref: ModelRef, settings: Settings) -> None:
        """Load and verify ``ref`` from the store; on failure keep what was served and record why."""
        try:
            loaded = self._open(ref, settings)
        except (StoreError, NotImplementedError, LookupError) as exc:
            self.errors[ref.name] = str(exc)
            log.error("cannot load %s: %s", ref, exc)
            return
        self.install(ref.name, loaded)
        self.errors.pop(ref.name, None)
        log.info("loaded %s (%s, %s)", ref, loaded.encoder.name, loaded.encoder.provider)

    def _open(self, ref: ModelRef, settings: Settings) -> LoadedModel:
        version = self.store.load(ref)
        if version.manifest.family != "dual-encoder":
            raise NotImplementedError(f"family {version.manifest.family!r} is not served yet")
        encoder = OnnxEncoder.from_version(version, settings.variant, settings.threads, settings.prefer_gpu)
        return LoadedModel(version.manifest, encoder, settings.variant)

    def install(self, name: str, loaded: LoadedModel) -> None:
        """Make ``loaded`` the served version of ``name``; tell listeners if it replaced another."""
        old = self.models.get(name)
        self.versions[(name, loaded.manifest.version)] = loaded
        # One dict assignment: requests that already hold ``old`` finish on it, new ones get ``loaded``.
        self.models[name] = loaded
        if old is not None and old.manifest.version != loaded.manifest.version:
            for listener in self.listeners:
                listener(name, old, loaded)

    def get_version(self, name: str, version: int) -> LoadedModel | None:
        """A held version of ``name`` (current or retired), if it is still loaded."""
        return self.versions.get((name, version))

    def release(self, name: str, version: int) -> None:
        """Drop a retired version once nothing needs it; the current version is never dropped."""
        current = self.models.get(name)
        if current is None or current.manifest.version != version:
            self.versions.pop((name, version), None)

    def get(self, model: str | None) -> LoadedModel:
        """The loaded model a request names (``name``, ``name:VERSION``, ``name@ALIAS``) or the default."""
        if not self.models:
            raise NotReadyError("no model is loaded yet")
        if model is None:
            return next(iter(self.models.values()))
        ref = parse_ref(model)
        loaded = self.models.get(ref.name)
        if loaded is None:
            raise NotFoundError(f"model {ref.name!r} is not served (serving: {sorted(self.models)})", "model")
        if (ref.version or ref.alias) and self.store.resolve(ref) != loaded.manifest.version:
            raise NotFoundError(f"{ref} is not the loaded version ({loaded.id})", "model")
        return loaded
