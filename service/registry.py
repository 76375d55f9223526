"""The models the service holds in memory, and how a request's ``model`` string finds one."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from modelstore import Manifest, ModelStore, StoreError
from modelstore.refs import ModelRef, parse_ref
from service.engine.onnx_encoder import OnnxEncoder
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


@dataclass
class ModelRegistry:
    """Loaded models by name; the first is the default for requests that name none."""

    store: ModelStore
    models: dict[str, LoadedModel] = field(default_factory=dict)
    # Name → the reason its last load failed, shown in /v1/models.
    errors: dict[str, str] = field(default_factory=dict)

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
        self.models[ref.name] = loaded
        self.errors.pop(ref.name, None)
        log.info("loaded %s (%s, %s)", ref, loaded.encoder.name, loaded.encoder.provider)

    def _open(self, ref: ModelRef, settings: Settings) -> LoadedModel:
        version = self.store.load(ref)
        if version.manifest.family != "dual-encoder":
            raise NotImplementedError(f"family {version.manifest.family!r} is not served yet")
        encoder = OnnxEncoder.from_version(version, settings.variant, settings.threads, settings.prefer_gpu)
        return LoadedModel(version.manifest, encoder, settings.variant)

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
