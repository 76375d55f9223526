"""The persistent indexes under ``<data_dir>/indexes``: open, create, append, search, re-generate, delete.

Everything here is blocking (file I/O, fsync, FAISS) and thread-safe: the async layer
(``service/search/index_service.py``) calls it through ``asyncio.to_thread``. Each index has one lock that guards
its in-memory state, so a search never sees a half-applied add, and each generation a write lock that
serialises its appends and snapshots (``service/search/snapshot.py``), so writing a snapshot holds up
adds but not searches. Opening reads the latest snapshot and replays only the log after it.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from xalign.modelstore.integrity import fsync_dir
from xalign.modelstore.names import broken_rule, validate_index_name
from xalign.service.search.faiss_index import FloatArray, IntArray, VectorIndex
from xalign.service.search.persistence import (
    META_FILE,
    IndexMeta,
    LogPosition,
    LogWriter,
    Record,
    log_name,
    read_meta,
    scan,
    write_meta,
)
from xalign.service.search.snapshot import (
    SnapshotPolicy,
    read_snapshot,
    remove_snapshots,
    snapshot_name,
    write_snapshot,
)

log = logging.getLogger("xalign.service")


class IndexExistsError(FileExistsError):
    """An index of that name exists already."""


class UnknownIndexError(KeyError):
    """No index of that name."""


class StaleGenerationError(RuntimeError):
    """The index moved to another generation (model version) than the caller embedded for."""


@dataclass(frozen=True)
class Hit:
    """One search result: the row's id, its cosine with the query and its text."""

    id: int
    score: float
    text: str


# Rows replayed from the log are added to FAISS in batches of this many (a few MB of vectors at a time):
# FAISS adds large batches far faster than one log record (one client add) at a time.
REPLAY_BATCH = 16_384


class Generation:
    """Texts, their FAISS index and their open log: what one model version made of an index's texts.

    Vectors live only in the FAISS index. ``write_lock`` serialises appends and snapshots of this
    generation; searches do not take it (writing a snapshot only reads the FAISS index).
    """

    def __init__(self, folder: Path, meta: IndexMeta, writer: LogWriter, policy: SnapshotPolicy) -> None:
        self.folder, self.meta, self.writer, self.policy = folder, meta, writer, policy
        self.texts: list[str] = []
        self.index = VectorIndex(meta.dim, meta.kind, meta.params)
        self.write_lock = threading.Lock()
        self._snapshot_rows = 0  # rows the latest snapshot holds
        self._build_s = 0.0  # seconds of FAISS adds since the latest snapshot

    @classmethod
    def create(cls, folder: Path, meta: IndexMeta, policy: SnapshotPolicy) -> Generation:
        """A new, empty generation with its own empty log (a leftover log or snapshot of that number goes)."""
        (folder / snapshot_name(meta.generation)).unlink(missing_ok=True)
        return cls(folder, meta, LogWriter.create(folder / meta.log_name), policy)

    @classmethod
    def load(cls, folder: Path, meta: IndexMeta, policy: SnapshotPolicy) -> Generation:
        """The generation ``meta`` names: its snapshot if one verifies, then the log after it (a torn tail cut)."""
        path = folder / meta.log_name
        if not path.exists():
            LogWriter.create(path).close()
        restored = read_snapshot(folder, meta, path)
        position = restored[2] if restored is not None else LogPosition()
        generation = cls(folder, meta, LogWriter(path, position), policy)
        if restored is not None:
            generation.index, generation.texts = restored[0], restored[1]
            generation._snapshot_rows = position.rows
        batch: list[Record] = []
        for record in scan(path, meta.dim, position):  # advances the writer's position
            batch.append(record)
            if record.first_id + len(record.texts) - batch[0].first_id >= REPLAY_BATCH:
                generation._apply_records(batch)
                batch = []
        generation._apply_records(batch)
        with generation.write_lock:
            generation.snapshot_if_due()  # a long replay is not repeated at the next start
        return generation

    def _apply_records(self, records: list[Record]) -> None:
        if records:
            self.apply([t for r in records for t in r.texts], np.concatenate([r.vectors for r in records]))

    @property
    def count(self) -> int:
        """Rows stored."""
        return len(self.texts)

    def apply(self, texts: list[str], vectors: FloatArray) -> None:
        """Add rows in memory (after they are durable in the log)."""
        started = time.perf_counter()
        self.index.add(vectors)
        self.texts.extend(texts)
        self._build_s += time.perf_counter() - started

    def append_locked(self, texts: list[str], vectors: FloatArray) -> list[int]:
        """Make rows durable, then add them; returns their ids. The caller holds ``write_lock``."""
        first = self.count
        self.writer.append(Record(first, np.asarray(vectors, np.float32), texts))
        self.apply(texts, vectors)
        return list(range(first, first + len(texts)))

    def append(self, texts: list[str], vectors: FloatArray) -> list[int]:
        """Make rows durable, add them, and snapshot if one is due; returns their ids."""
        with self.write_lock:
            ids = self.append_locked(texts, vectors)
            self.snapshot_if_due()
            return ids

    def snapshot_if_due(self) -> None:
        """Write a snapshot if the policy calls for one. The caller holds ``write_lock``."""
        if self.policy.due(self.count - self._snapshot_rows, self._build_s):
            self.write_snapshot()

    def write_snapshot(self) -> None:
        """Snapshot the FAISS index and texts as of the log's end. The caller holds ``write_lock``.

        A failure (a full disk) is logged and the rows wait for the next snapshot: the log has them.
        """
        started = time.perf_counter()
        try:
            write_snapshot(self.folder, self.meta, self.index, self.texts, replace(self.writer.position))
        except OSError as exc:
            log.warning("index %s: snapshot not written, the log still holds every row: %s", self.meta.name, exc)
        else:
            log.info(
                "index %s: snapshot of %d rows in %.1f s", self.meta.name, self.count, time.perf_counter() - started
            )
        self._snapshot_rows, self._build_s = self.count, 0.0

    def close(self, *, snapshot: bool) -> None:
        """Close the log, first snapshotting the rows the latest snapshot lacks if ``snapshot``."""
        with self.write_lock:
            if snapshot and self.count > self._snapshot_rows:
                self.write_snapshot()
            self.writer.close()

    def remove(self) -> None:
        """Close and delete this generation's log and snapshot."""
        self.writer.close()
        self.writer.path.unlink(missing_ok=True)
        (self.folder / snapshot_name(self.meta.generation)).unlink(missing_ok=True)


class StoredIndex:
    """One persistent index. Row i (id i) is ``texts[i]`` with the FAISS index's vector i."""

    def __init__(self, folder: Path, generation: Generation) -> None:
        self.folder = folder
        self._current = generation
        self.lock = threading.RLock()

    @classmethod
    def open(cls, folder: Path, policy: SnapshotPolicy | None = None) -> StoredIndex:
        """Load the index in ``folder`` (snapshot + log tail); other generations' logs and snapshots go."""
        meta = read_meta(folder)
        for leftover in folder.glob("vectors-*.log"):
            if leftover.name != meta.log_name:
                leftover.unlink()  # an interrupted re-embedding, or the old log of a finished one
        remove_snapshots(folder, keep=meta.generation)
        return cls(folder, Generation.load(folder, meta, policy or SnapshotPolicy()))

    @property
    def meta(self) -> IndexMeta:
        """Name, model version, kind, params and generation."""
        return self._current.meta

    @property
    def count(self) -> int:
        """Rows stored."""
        return self._current.count

    @property
    def device(self) -> str:
        """``gpu`` or ``cpu``: where searches run."""
        return self._current.index.device

    def append(self, texts: list[str], vectors: FloatArray, generation: int) -> list[int]:
        """Durably add rows embedded for ``generation``; ``StaleGenerationError`` if it was replaced meanwhile.

        A snapshot that falls due is written before returning, outside the search lock (searches go on).
        """
        while True:
            current = self._current
            with current.write_lock:
                with self.lock:
                    if self.meta.generation != generation:
                        raise StaleGenerationError(f"index {self.meta.name} moved to generation {self.meta.generation}")
                    if self._current is not current:
                        continue  # switched while we waited for the write lock: lock the new generation
                    ids = current.append_locked(texts, vectors)
                current.snapshot_if_due()
                return ids

    def search(self, queries: FloatArray, k: int, model_version: int) -> list[list[Hit]]:
        """Top-k hits of each of (q, dim) unit queries embedded by ``model_version``, best first.

        ``StaleGenerationError`` if the index is no longer in that version's space (re-embedded meanwhile).
        """
        with self.lock:
            if self.meta.model_version != model_version:
                raise StaleGenerationError(f"index {self.meta.name} is now at version {self.meta.model_version}")
            scores, ids = self._current.index.search(queries, k)  # (q, k') each
            texts = self._current.texts
            return [_hits(s, i, texts) for s, i in zip(scores, ids, strict=True)]

    def texts(self, start: int = 0, stop: int | None = None) -> list[str]:
        """A copy of texts ``start:stop``."""
        with self.lock:
            return self._current.texts[start:stop]

    def contents(self) -> tuple[list[str], FloatArray, IndexMeta]:
        """Copies of all texts (n,), vectors (n, dim) (read out of FAISS) and the metadata, taken together."""
        with self.lock:
            current = self._current
            return list(current.texts), current.index.vectors(0, current.count), self.meta

    def begin_generation(self, model_version: int) -> Generation:
        """A new, empty generation for ``model_version`` with its own log file (not yet in use)."""
        meta = self.meta.model_copy(update={"model_version": model_version, "generation": self.meta.generation + 1})
        return Generation.create(self.folder, meta, self._current.policy)

    def commit_generation(self, new: Generation) -> None:
        """Switch to ``new`` if it holds every row: rewrite meta.json atomically, then drop the old log."""
        old = self._current
        with old.write_lock, self.lock:
            if new.count != self.count:
                raise StaleGenerationError(f"index {self.meta.name}: {self.count - new.count} rows not re-embedded")
            write_meta(self.folder, new.meta)
            self._current = new
        old.remove()

    def discard_generation(self, new: Generation) -> None:
        """Forget an unfinished generation, its log and its snapshot."""
        new.remove()

    def close(self, *, snapshot: bool = True) -> None:
        """Close the log (everything acknowledged is already on disk), snapshotting the tail if ``snapshot``."""
        self._current.close(snapshot=snapshot)


def _hits(scores: FloatArray, ids: IntArray, texts: list[str]) -> list[Hit]:
    # FAISS pads with id -1 when an approximate index finds fewer than k rows.
    return [Hit(int(i), float(s), texts[int(i)]) for s, i in zip(scores, ids, strict=True) if i >= 0]


def _servable_name(folder: Path) -> bool:
    """Whether an index folder's name is a valid index name (one made before the rules tightened may not be)."""
    rule = broken_rule(folder.name, lowercase=True)
    if rule is not None:
        # Served, it could never be named in a request (422), and it could clash on a case-insensitive filesystem.
        log.error("index folder %s breaks rule %r of index names and is not served: rename it", folder, rule)
    return rule is None


class IndexStore:
    """Every index under ``root``, by name. Thread-safe; blocking."""

    def __init__(self, root: Path, policy: SnapshotPolicy | None = None) -> None:
        self.root = root
        self.policy = policy or SnapshotPolicy()
        self._indexes: dict[str, StoredIndex] = {}
        self._lock = threading.Lock()

    @classmethod
    def open(cls, root: Path, policy: SnapshotPolicy | None = None) -> IndexStore:
        """Load every index under ``root``; leftovers of interrupted creates/deletes go.

        ``root`` is created by the first :meth:`create`, so a service that never makes an index writes nothing.
        """
        store = cls(root, policy)
        for folder in sorted(root.iterdir()) if root.is_dir() else []:
            if folder.name.startswith("."):
                shutil.rmtree(folder, ignore_errors=True)  # .tmp-* / .deleted-*: never acknowledged, or deleted
            elif (folder / META_FILE).is_file() and _servable_name(folder):
                store._open_one(folder)
        return store

    def _open_one(self, folder: Path) -> None:
        try:
            index = StoredIndex.open(folder, self.policy)
        except (OSError, ValueError) as exc:
            # One unreadable index must not keep the others (and the service) down; its files stay for repair.
            log.error("index %s cannot be opened and is not served: %s", folder.name, exc)
            return
        self._indexes[folder.name] = index
        log.info("index %s: %d rows (%s, %s)", folder.name, index.count, index.meta.kind, index.device)

    def names(self) -> list[str]:
        """Index names, sorted."""
        with self._lock:
            return sorted(self._indexes)

    def get(self, name: str) -> StoredIndex:
        """The index ``name`` (``UnknownIndexError`` if none)."""
        with self._lock:
            index = self._indexes.get(name)
        if index is None:
            raise UnknownIndexError(name)
        return index

    def create(self, meta: IndexMeta) -> StoredIndex:
        """Create an empty index: written in a hidden folder, fsynced, then renamed into place."""
        validate_index_name(meta.name)  # callers check first (422); this keeps the folder inside root regardless
        with self._lock:
            if meta.name in self._indexes or (self.root / meta.name).exists():
                raise IndexExistsError(meta.name)
            self.root.mkdir(parents=True, exist_ok=True)
            staging = self.root / f".tmp-{meta.name}-{uuid.uuid4().hex}"
            staging.mkdir()
            write_meta(staging, meta)
            LogWriter.create(staging / log_name(meta.generation)).close()
            staging.rename(self.root / meta.name)
            fsync_dir(self.root)
            index = StoredIndex.open(self.root / meta.name, self.policy)
            self._indexes[meta.name] = index
            return index

    def delete(self, name: str) -> None:
        """Remove an index: renamed away first (atomic), then its files are deleted."""
        with self._lock:
            index = self._indexes.pop(name, None)
            if index is None:
                raise UnknownIndexError(name)
            index.close(snapshot=False)
            doomed = self.root / f".deleted-{name}-{uuid.uuid4().hex}"
            index.folder.rename(doomed)
            fsync_dir(self.root)
        shutil.rmtree(doomed, ignore_errors=True)

    def close(self) -> None:
        """Close every index's log, snapshotting what each latest snapshot lacks (a clean shutdown)."""
        with self._lock:
            for index in self._indexes.values():
                index.close()
