"""The models the service holds in memory, and how a request's ``model`` string finds one."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from xalign.modelstore import InvalidNameError, Manifest, ModelStore, StoreError
from xalign.modelstore.aliases import validate_alias
from xalign.modelstore.refs import ModelRef, parse_ref
from xalign.runtime.onnx_encoder import OnnxEncoder, Vectors
from xalign.runtime.senses.engine import SenseEngine
from xalign.service.engine.admission import WorkSlots
from xalign.service.engine.batcher import Batcher, BatchPolicy
from xalign.service.errors import InvalidRequestError, NotFoundError, NotReadyError, UnprocessableError
from xalign.service.metrics import Metrics
from xalign.service.settings import Settings, env_name

log = logging.getLogger("xalign.service")

# Embedded by every candidate version before it may serve: one Latin, one German sentence.
SMOKE_TEXTS = ("xalign smoke check: hello world.", "Der Zug nach München hat Verspätung.")
# Families the service loads; a backpack also answers /v1/senses.
SERVED_FAMILIES = ("dual-encoder", "backpack")
# Failures a model version may legitimately have (bad files, unsupported family, missing variant, bad output).
EXPECTED_LOAD_ERRORS: tuple[type[Exception], ...] = (StoreError, NotImplementedError, LookupError, ValueError)


class SmokeCheckError(ValueError):
    """A freshly loaded version embeds the smoke texts wrongly (shape, NaN/inf, norm)."""


@dataclass(frozen=True)
class LoadedModel:
    """One served model version with its encoder and its batching queue (and its senses, for a backpack).

    A request that holds one finishes on it even after a swap released it: its batcher still serves.
    """

    manifest: Manifest
    encoder: OnnxEncoder
    variant: str
    batcher: Batcher
    senses: SenseEngine | None = None
    # Senses requests computed at once on this version (each is one forward pass outside the batcher).
    senses_slots: WorkSlots = field(default_factory=lambda: WorkSlots(4, "senses"))

    @property
    def id(self) -> str:
        """The id clients see: ``name:version``."""
        return f"{self.manifest.name}:{self.manifest.version}"

    async def embed(self, texts: list[str], param: str | None = "input") -> tuple[Vectors, int]:
        """Embed ``texts`` through the dynamic batcher: (n,) → ((n, dim) unit vectors, token count).

        Admitted whole or refused whole (429, or 413 naming ``param`` over the per-request token maximum).
        """
        return await self.batcher.submit(texts, param)


def smoke_check(loaded: LoadedModel) -> None:
    """Embed the smoke texts directly (no queue): right shape, finite, unit norm where the manifest says so.

    A backpack's senses outputs are checked on the first smoke text too (``SenseGraphError`` is a ValueError).
    """
    vectors = loaded.encoder.encode(list(SMOKE_TEXTS))  # (2, dim)
    expected = (len(SMOKE_TEXTS), loaded.manifest.embedding_dim)
    if vectors.shape != expected:
        raise SmokeCheckError(f"{loaded.id}: smoke embeddings have shape {vectors.shape}, expected {expected}")
    if not np.isfinite(vectors).all():
        raise SmokeCheckError(f"{loaded.id}: smoke embeddings contain NaN or infinity")
    norms = np.linalg.norm(vectors, axis=1)
    if loaded.manifest.normalize and not np.allclose(norms, 1.0, atol=1e-3):
        raise SmokeCheckError(f"{loaded.id}: smoke embeddings are not unit vectors (norms {norms.round(4)})")
    if loaded.senses is not None:
        loaded.senses.check(SMOKE_TEXTS[0], loaded.manifest.embedding_dim)


def served_variant(manifest: Manifest, wanted: str) -> str:
    """``wanted`` if the version publishes it, else fp32 (which every version has), with a warning.

    One setting applies to every model of the store, and not every model has every variant (a Backpack is
    published in fp32 only): serving the exact model beats refusing it. ``/v1/models`` shows what is served.
    """
    if wanted in manifest.onnx.variants:
        return wanted
    log.warning("%s:%d has no %s variant: serving fp32", manifest.name, manifest.version, wanted)
    return "fp32"


# Called after a model is swapped to a new version: (name, old, new). Indexes re-embed from here.
SwapListener = Callable[[str, "LoadedModel", "LoadedModel"], None]


@dataclass
class ModelRegistry:
    """Loaded models by name; ``default_model`` (else the first served dual encoder) answers requests naming none."""

    store: ModelStore
    models: dict[str, LoadedModel] = field(default_factory=dict)
    # Name → the reason its last load failed, and when (UTC), shown in /v1/models.
    errors: dict[str, str] = field(default_factory=dict)
    error_times: dict[str, datetime] = field(default_factory=dict)
    # Name → when its served version was installed (UTC).
    loaded_at: dict[str, datetime] = field(default_factory=dict)
    # Every version still held, current or retired: indexes built with an old one are searched with it
    # until they are re-embedded (DESIGN.md §5).
    versions: dict[tuple[str, int], LoadedModel] = field(default_factory=dict)
    listeners: list[SwapListener] = field(default_factory=list)
    # Name → how it is resolved in the store (as configured, or the production alias else the latest).
    refs: dict[str, ModelRef] = field(default_factory=dict)
    metrics: Metrics | None = None
    # What a request without ``model`` gets (setting ``default_model``); None: the first served dual encoder.
    default_model: str | None = None
    # Names this replica must serve to be ready (/ready): the configured ones, else those in the store at start.
    required: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings, metrics: Metrics | None = None) -> ModelRegistry:
        """Load every configured model (or every model in the store); failures are logged and kept."""
        registry = cls(store=ModelStore(settings.store), metrics=metrics, default_model=settings.default_model)
        refs = registry.configured_refs(settings)
        registry.required = tuple(dict.fromkeys(ref.name for ref in refs))
        for ref in refs:
            registry.load(ref, settings)
        if not registry.models:
            log.warning("no model could be loaded from %s: /ready answers 503 until one is", settings.store)
        return registry

    def configured_refs(self, settings: Settings) -> list[ModelRef]:
        """The references to serve: the configured ones, else every model now in the store."""
        refs = [parse_ref(r) for r in settings.models] or [ModelRef(n) for n in self.store.models()]
        for ref in refs:
            self.refs.setdefault(ref.name, ref)
        return refs

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
        version = self.store.load(ref)
        manifest = version.manifest
        if manifest.family not in SERVED_FAMILIES:
            raise NotImplementedError(f"family {manifest.family!r} is not served")
        variant = served_variant(manifest, settings.variant)
        # A backpack graph also has a ``sentence_embedding`` output, so it embeds through the same encoder.
        encoder = OnnxEncoder.from_version(
            version, variant, settings.threads, settings.prefer_gpu, spinning=settings.ort_spinning
        )
        senses = SenseEngine.from_version(version, encoder) if manifest.family == "backpack" else None
        batcher = Batcher(encoder, BatchPolicy.from_settings(settings), self.metrics, label=manifest.name)
        slots = WorkSlots(settings.max_concurrent_senses, f"{manifest.name} senses")
        loaded = LoadedModel(manifest, encoder, variant, batcher, senses, slots)
        smoke_check(loaded)
        return loaded

    def record_failure(self, name: str, message: str) -> None:
        """Remember why ``name`` could not be (re)loaded; the served version, if any, stays."""
        self.errors[name] = message
        self.error_times[name] = datetime.now(UTC)
        if self.metrics is not None:
            self.metrics.load_failures.labels(name).inc()
        log.error("cannot load %s: %s", name, message)

    def clear_failure(self, name: str) -> None:
        """Forget the last load failure of ``name``."""
        self.errors.pop(name, None)
        self.error_times.pop(name, None)

    def install(self, name: str, loaded: LoadedModel) -> None:
        """Make ``loaded`` the served version of ``name``; tell listeners if it replaced another."""
        old = self.models.get(name)
        self.versions[(name, loaded.manifest.version)] = loaded
        # One dict assignment: requests that already hold ``old`` finish on it, new ones get ``loaded``.
        self.models[name] = loaded
        self.loaded_at[name] = datetime.now(UTC)
        self.clear_failure(name)
        if self.metrics is not None:
            self.metrics.loaded_version.labels(name).set(loaded.manifest.version)
        log.info("serving %s (%s, %s)", loaded.id, loaded.variant, loaded.encoder.provider)
        if old is not None and old.manifest.version != loaded.manifest.version:
            for listener in self.listeners:
                listener(name, old, loaded)

    def get_version(self, name: str, version: int) -> LoadedModel | None:
        """A held version of ``name`` (current or retired), if it is still loaded."""
        return self.versions.get((name, version))

    def release(self, name: str, version: int) -> None:
        """Drop a retired version once nothing new needs it: its queue drains, then its worker ends.

        Requests that resolved it before still finish on it (its batcher restarts its worker for them);
        its session is freed with the last reference. The current version is never dropped. Safe to call
        from any thread.
        """
        current = self.models.get(name)
        if current is not None and current.manifest.version == version:
            return
        released = self.versions.pop((name, version), None)
        if released is not None:
            released.batcher.close_soon()
            log.info("released %s", released.id)

    async def close(self) -> None:
        """Drain and stop every held version's batcher (shutdown)."""
        for loaded in list(self.versions.values()):
            await loaded.batcher.close()

    def get(self, model: str | None) -> LoadedModel:
        """The loaded model a request names (``name``, ``name:VERSION``, ``name@ALIAS``) or the default.

        422 naming the rule for a malformed name or alias, 404 for a model not served or another version.
        """
        if not self.models:
            raise NotReadyError("no model is loaded yet")
        if model is None:
            return self.default()
        ref = _parse(model)
        loaded = self.models.get(ref.name)
        if loaded is None:
            raise NotFoundError(f"model {ref.name!r} is not served (serving: {sorted(self.models)})", "model")
        if (ref.version or ref.alias) and self.store.resolve(ref) != loaded.manifest.version:
            raise NotFoundError(f"{ref} is not the loaded version ({loaded.id})", "model")
        return loaded

    def default(self) -> LoadedModel:
        """The model of requests that name none: ``default_model`` if set, else the first served dual encoder.

        "First" follows the configured order (``models``), else the store's (alphabetical). A Backpack is the
        default only when configured: its small dimension and token limit would surprise an embeddings client.
        """
        if self.default_model is not None:
            return self.get(self.default_model)
        for name in self.refs:
            loaded = self.models.get(name)
            if loaded is not None and loaded.manifest.family == "dual-encoder":
                return loaded
        raise InvalidRequestError(
            f"no dual encoder is served, so there is no default model: name one in 'model' (serving: "
            f"{sorted(self.models)}) or set {env_name('default_model')}",
            "model",
        )

    def get_senses(self, model: str | None) -> tuple[LoadedModel, SenseEngine]:
        """The model a senses request names, else the first loaded one with senses; 400 if it has none."""
        if model is None:
            with_senses = [m for n in self.refs if (m := self.models.get(n)) is not None and m.senses is not None]
            loaded = with_senses[0] if with_senses else self.get(None)
        else:
            loaded = self.get(model)
        if loaded.senses is None:
            raise InvalidRequestError(
                f"{loaded.id} is a {loaded.manifest.family} model and has no senses: /v1/senses needs a backpack",
                "model",
            )
        return loaded, loaded.senses


def _parse(model: str) -> ModelRef:
    """A request's model reference, or 422 naming the rule its name or alias breaks."""
    try:
        ref = parse_ref(model)
        if ref.alias is not None and ref.alias != "latest":
            validate_alias(ref.alias)
    except InvalidNameError as exc:
        raise UnprocessableError(str(exc), "model") from None
    return ref
