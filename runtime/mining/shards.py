"""Embedding shards on disk: what a mining job embeds, in files it can find again after being killed.

Layout under the work folder::

    embeddings/shards.json              what the shards were made from (model, inputs, format, shard size)
    embeddings/src/offsets.npy          (shards + 1,) int64: shard i holds distinct texts offsets[i]:offsets[i+1]
    embeddings/src/shard-00000.npy      (rows, dim) float32 unit rows, one per distinct text
    embeddings/tgt/...

Every file is written to a temp file and renamed (``runtime/mining/atomic_files.py``), so a shard that
exists is complete and a restarted job reuses it. ``shards.json`` is written before the first shard; a job
whose model (name, version, variant, fingerprint, manifest) or inputs (the sha256 of every file, in order),
text format or shard size differ from it refuses the folder with :class:`ReuseError` naming what changed.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from xalign.modelstore import ModelStore
from xalign.modelstore.refs import parse_ref
from xalign.runtime.errors import UnknownVariantError
from xalign.runtime.mining.atomic_files import replacing, write_text_atomic
from xalign.runtime.mining.corpus import Side
from xalign.runtime.onnx_encoder import OnnxEncoder

EMBEDDINGS = "embeddings"
MANIFEST = "shards.json"
OFFSETS = "offsets.npy"
SCHEMA = 1

Identity = dict[str, str | int]


class ReuseError(ValueError):
    """The work folder holds results made from another model, input or setting than the job's."""


@dataclass(frozen=True)
class ModelChoice:
    """The model a job embeds with: a store, a reference pinned to one version, a variant, and what it is."""

    store: Path
    ref: str
    variant: str
    dim: int
    identity: Identity


def choose_model(store: Path, ref: str, variant: str) -> ModelChoice:
    """Resolve ``ref`` (``name``, ``name:3``, ``name@alias``) to one version and check it has ``variant``.

    Reads the manifest only (the encoder verifies the files when it loads). Raises the store's errors for
    an unknown model, version or alias, and ``UnknownVariantError`` for a missing variant.
    """
    manifest = ModelStore(store).manifest(parse_ref(ref))
    if variant not in manifest.onnx.variants:
        raise UnknownVariantError(
            f"{manifest.name}:{manifest.version} has no {variant!r} variant (has {sorted(manifest.onnx.variants)})"
        )
    pinned = f"{manifest.name}:{manifest.version}"
    identity: Identity = {
        "model": pinned,
        "variant": variant,
        "model fingerprint": manifest.source.fingerprint or "",
        "model manifest sha256": hashlib.sha256(manifest.to_json().encode()).hexdigest(),
        "embedding dim": manifest.embedding_dim,
    }
    return ModelChoice(Path(store), pinned, variant, manifest.embedding_dim, identity)


@dataclass(frozen=True)
class ShardFiles:
    """The shard files of one side: ``rows`` distinct texts in shards of ``size`` rows of ``dim`` floats."""

    folder: Path
    rows: int
    size: int
    dim: int

    @property
    def count(self) -> int:
        """Number of shards."""
        return -(-self.rows // self.size)

    @property
    def offsets(self) -> npt.NDArray[np.int64]:
        """(count + 1,) first distinct text of each shard, then ``rows``."""
        return np.minimum(np.arange(self.count + 1, dtype=np.int64) * self.size, self.rows)

    def path(self, shard: int) -> Path:
        """File of shard ``shard``."""
        return self.folder / f"shard-{shard:05d}.npy"

    def finished(self, shard: int) -> bool:
        """Whether shard ``shard`` is on disk with the shape it must have (a complete file: writes are atomic)."""
        start, stop = self.offsets[shard : shard + 2]
        try:
            return tuple(np.load(self.path(shard), mmap_mode="r").shape) == (int(stop - start), self.dim)
        except (OSError, ValueError):
            return False

    def missing(self) -> list[int]:
        """Shards still to embed."""
        return [i for i in range(self.count) if not self.finished(i)]

    def load(self, shard: int) -> npt.NDArray[np.float32]:
        """Shard ``shard`` as a read-only memory map, (rows, dim)."""
        return np.asarray(np.load(self.path(shard), mmap_mode="r"), dtype=np.float32)

    def load_all(self) -> npt.NDArray[np.float32]:
        """Every shard in one (rows, dim) array in memory."""
        parts = [self.load(i) for i in range(self.count)]
        return np.concatenate(parts) if parts else np.zeros((0, self.dim), np.float32)


def shard_files(work: Path, side: Side, size: int, dim: int) -> ShardFiles:
    """The shard files of ``side`` under the work folder."""
    return ShardFiles(work / EMBEDDINGS / side.name, side.unique, size, dim)


def shards_identity(model: ModelChoice, sides: tuple[Side, Side], shard_size: int) -> tuple[Identity, dict[str, str]]:
    """What the shards depend on, as flat ``key → value``, and a readable label for each key."""
    identity: Identity = {**model.identity, "format": sides[0].fmt, "shard size": shard_size}
    labels = {key: key for key in identity}
    for side in sides:
        identity[f"{side.name} files"] = len(side.files)
        labels[f"{side.name} files"] = f"number of {side.name} files"
        for number, file in enumerate(side.files, start=1):
            key = f"{side.name} file {number} sha256"
            identity[key] = file.sha256
            labels[key] = f"{side.name} file {number} ({file.path}) sha256"
    return identity, labels


def open_shards(folder: Path, identity: Identity, labels: Mapping[str, str], sides: list[ShardFiles]) -> str:
    """Make ``folder`` (``WORK/embeddings``) hold the shards of ``identity``; return its manifest's text.

    An existing manifest with the same identity keeps every finished shard; a different one raises
    :class:`ReuseError` naming each change. Without a manifest the folder is emptied and started afresh.
    """
    manifest = folder / MANIFEST
    if manifest.is_file():
        text = manifest.read_text(encoding="utf-8")
        changes = identity_changes(json.loads(text).get("identity", {}), identity, labels)
        if changes:
            raise ReuseError(
                f"{folder} holds embeddings of another model or input ({'; '.join(changes)}); "
                "start again with --restart, or give another --work folder"
            )
        return text
    shutil.rmtree(folder, ignore_errors=True)
    for side in sides:
        side.folder.mkdir(parents=True)
        with replacing(side.folder / OFFSETS) as tmp, tmp.open("wb") as handle:
            np.save(handle, side.offsets)
    record = {"schema": SCHEMA, "identity": identity, "sides": {s.folder.name: _side_record(s) for s in sides}}
    text = json.dumps(record, indent=2, ensure_ascii=False) + "\n"
    write_text_atomic(manifest, text)
    return text


def _side_record(files: ShardFiles) -> dict[str, Any]:
    return {"distinct texts": files.rows, "shards": files.count, "offsets": OFFSETS}


def identity_changes(old: Mapping[str, Any], new: Identity, labels: Mapping[str, str]) -> list[str]:
    """``label: old → new`` for every key whose value differs (long values shortened)."""
    keys = sorted(set(old) | set(new), key=lambda key: (key not in new, key))
    return [
        f"{labels.get(key, key)}: {_short(old.get(key))} → {_short(new.get(key))}"
        for key in keys
        if old.get(key) != new.get(key)
    ]


def _short(value: object) -> str:
    if value is None:
        return "(none)"
    text = str(value)
    return text[:12] + "…" if len(text) > 16 else text


@dataclass(frozen=True)
class EmbedTask:
    """Embed ``texts`` into the shard file ``path``."""

    path: Path
    texts: list[str]


def embedding_tasks(side: Side, files: ShardFiles, todo: list[int]) -> Iterator[EmbedTask]:
    """One task per shard in ``todo``, its texts read from the side's files when the task is asked for."""
    wanted, texts, shard = set(todo), [], 0
    if not wanted:
        return
    for text in side.texts():
        texts.append(text)
        if len(texts) == files.size:
            if shard in wanted:
                yield EmbedTask(files.path(shard), texts)
            texts, shard = [], shard + 1
    if texts and shard in wanted:
        yield EmbedTask(files.path(shard), texts)


@dataclass
class ShardEmbedder:
    """Embeds a shard's texts and writes them atomically; loads (and verifies) the encoder on first use.

    Holds the store, the pinned reference and the variant, not the encoder, so it can be sent to another
    process and load its own there.
    """

    store: Path
    ref: str
    variant: str
    batch_size: int = 32
    _encoder: OnnxEncoder | None = field(default=None, init=False, repr=False, compare=False)

    def __call__(self, task: EmbedTask) -> int:
        """Embed the task's texts into its shard file; return how many texts it held."""
        if self._encoder is None:
            self._encoder = OnnxEncoder.from_store(self.store, self.ref, self.variant)
        vectors = self._encoder.encode(task.texts, self.batch_size)  # (rows, dim), unit rows
        with replacing(task.path) as tmp, tmp.open("wb") as handle:
            np.save(handle, vectors)
        return len(task.texts)

    def __getstate__(self) -> dict[str, Any]:
        # The loaded encoder (an onnxruntime session) stays in this process.
        return {**self.__dict__, "_encoder": None}
