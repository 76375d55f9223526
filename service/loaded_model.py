"""One served model version (encoder, batching queue, senses) and how a candidate version is built and checked."""

from __future__ import annotations

import functools
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xalign.modelstore import Manifest, ModelStore, ModelVersion, StoreError
from xalign.modelstore.refs import ModelRef
from xalign.runtime.onnx_encoder import OnnxEncoder, Vectors
from xalign.runtime.senses.engine import SenseEngine
from xalign.runtime.session import CUDA, choose_providers
from xalign.runtime.tokenization import Tokenized
from xalign.service.engine.admission import WorkSlots
from xalign.service.engine.batcher import PLAIN, Batcher, BatchPolicy, Tokenizing, tokenize_off_loop
from xalign.service.engine.lanes import Lanes
from xalign.service.errors import UnprocessableError
from xalign.service.metrics import Metrics
from xalign.service.settings import Settings

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

    async def embed(
        self, texts: list[str], param: str | None = "input", how: Tokenizing = PLAIN
    ) -> tuple[Vectors, int]:
        """Embed ``texts`` through the dynamic batcher: (n,) → ((n, dim) unit vectors, embedded token count).

        ``how``: each text's prefix (default: the manifest's ``text_prefix``) and truncation. Admitted whole or
        refused whole (429, or 413 naming ``param`` over the per-request token maximum, or, with
        ``how.truncate`` false, naming the first text longer than the model's token limit).
        """
        return await self.batcher.submit(texts, param, how)

    async def tokenize(self, texts: list[str], prefix: str) -> list[Tokenized]:
        """``texts`` as the model sees them after ``prefix``: ids, token strings, whether truncation cut them."""
        work = functools.partial(self.encoder.tokenizer.tokenize, texts, [prefix] * len(texts))
        return await tokenize_off_loop(texts, work)

    def prefix(self, input_type: str | None) -> str:
        """The prefix of ``input_type`` (None: the manifest's ``text_prefix``); 422 for a type it has none for."""
        if input_type is None:
            return self.manifest.text_prefix
        prefix = self.manifest.text_prefixes.get(input_type)
        if prefix is None:
            defined = sorted(self.manifest.text_prefixes) or "none"
            raise UnprocessableError(
                f"{self.id} defines no prefix for input_type {input_type!r} (it defines: {defined})",
                "input_type",
                code="input_type_not_defined",
            )
        return prefix

    def prefix_or_default(self, input_type: str) -> str:
        """The prefix of ``input_type`` where the model defines one, else the manifest's ``text_prefix``."""
        return self.manifest.text_prefixes.get(input_type, self.manifest.text_prefix)


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


def served_variant(manifest: Manifest, wanted: str, on_gpu: bool = False) -> str:
    """``wanted`` if the version publishes it, else fp32 (which every version has), with a warning.

    ``auto`` is int8 on CPU where the version publishes it (calibrated: Tatoeba within 0.5 of fp32 at about
    2x its speed, ``benchmarks/results/serving_compare.md``), and fp16 on a GPU where the version publishes it
    (``xalign-export --variants fp32 int8 fp16``; half the memory traffic and tensor cores; CPU kernels run it
    no faster than fp32, so it is never auto on a CPU), else fp32. One setting applies to every
    model of the store, and not every model has every variant (a Backpack is published in fp32 only):
    serving the exact model beats refusing it. ``/v1/models`` shows what is served.
    """
    if wanted == "auto":
        preferred = "fp16" if on_gpu else "int8"
        return preferred if preferred in manifest.onnx.variants else "fp32"
    if wanted in manifest.onnx.variants:
        return wanted
    log.warning("%s:%d has no %s variant: serving fp32", manifest.name, manifest.version, wanted)
    return "fp32"


def lane_count(settings: Settings, on_gpu: bool) -> int:
    """How many batches run side by side: ``lanes``, else ``threads``, else ``usable_cores``;
    one on a GPU (its kernels already fill the device, and a second session would double its memory)."""
    if on_gpu:
        return 1
    return settings.lanes or settings.threads or usable_cores()


def usable_cores(cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """The cores this process may use: its CPU affinity, capped by a cgroup v2 CPU quota (a container limited
    to 2 CPUs on a 64-core host sees 64 in its affinity; 64 lanes there would fight over 2 cores)."""
    cores = len(os.sched_getaffinity(0))
    try:
        quota, period = cpu_max.read_text().split()[:2]
    except (OSError, ValueError):
        return cores
    if quota == "max":
        return cores
    return max(1, min(cores, math.ceil(int(quota) / int(period))))


def open_lanes(version: ModelVersion, variant: str, settings: Settings, on_gpu: bool) -> Lanes | None:
    """A single-threaded session of the same graph for the batcher's lanes; None with one lane."""
    count = lane_count(settings, on_gpu)
    if count <= 1:
        return None
    encoder = OnnxEncoder.from_version(version, variant, 1, settings.prefer_gpu, spinning=settings.ort_spinning)
    return Lanes(encoder, count)


def load_version(store: ModelStore, ref: ModelRef, settings: Settings, metrics: Metrics | None) -> LoadedModel:
    """Open the version ``ref`` resolves to and smoke-check it, without serving it (blocking: seconds)."""
    version = store.load(ref)
    manifest = version.manifest
    if manifest.family not in SERVED_FAMILIES:
        raise NotImplementedError(f"family {manifest.family!r} is not served")
    on_gpu = choose_providers(settings.prefer_gpu)[0] == CUDA
    variant = served_variant(manifest, settings.variant, on_gpu)
    # A backpack graph also has a ``sentence_embedding`` output, so it embeds through the same encoder.
    encoder = OnnxEncoder.from_version(
        version, variant, settings.threads, settings.prefer_gpu, spinning=settings.ort_spinning
    )
    senses = SenseEngine.from_version(version, encoder) if manifest.family == "backpack" else None
    lanes = open_lanes(version, variant, settings, on_gpu)
    batcher = Batcher(encoder, BatchPolicy.from_settings(settings), metrics, label=manifest.name, lanes=lanes)
    slots = WorkSlots(settings.max_concurrent_senses, f"{manifest.name} senses")
    loaded = LoadedModel(manifest, encoder, variant, batcher, senses, slots)
    smoke_check(loaded)
    return loaded
