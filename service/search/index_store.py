"""The persistent indexes under ``<data_dir>/indexes``: open, create, append, search, re-generate, delete.

Everything here is blocking (file I/O, fsync, FAISS) and thread-safe: the async layer
(``service/search/index_service.py``) calls it through ``asyncio.to_thread``. Each index has one lock that guards
its in-memory state and its log, so a search never sees a half-applied add.
"""

from __future__ import annotations

import logging
import shutil
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xalign.modelstore.integrity import fsync_dir
from xalign.modelstore.names import broken_rule, validate_index_name
from xalign.service.search.faiss_index import FloatArray, IntArray, VectorIndex
from xalign.service.search.persistence import (
    META_FILE,
    IndexMeta,
    LogWriter,
    Record,
    log_name,
    read_meta,
    replay,
    write_meta,
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


@dataclass
class Rows:
    """Texts (n,) and their unit vectors (n, dim) float32; the vector buffer grows by doubling."""

    dim: int
    texts: list[str] = field(default_factory=list)
    _buffer: FloatArray = field(init=False)

    def __post_init__(self) -> None:
        self._buffer = np.zeros((0, self.dim), np.float32)

    @property
    def vectors(self) -> FloatArray:
        """(n, dim) view of the stored vectors (do not modify)."""
        return self._buffer[: len(self.texts)]

    def extend(self, texts: list[str], vectors: FloatArray) -> None:
        """Append n texts and their (n, dim) vectors."""
        n = len(self.texts)
        needed = n + len(texts)
        if needed > self._buffer.shape[0]:
            grown = np.zeros((max(needed, 2 * self._buffer.shape[0], 64), self.dim), np.float32)
            grown[:n] = self._buffer[:n]
            self._buffer = grown
        self._buffer[n:needed] = vectors
        self.texts.extend(texts)


class Generation:
    """Rows, their FAISS index and their open log: what one model version made of an index's texts."""

    def __init__(self, meta: IndexMeta, writer: LogWriter) -> None:
        self.meta = meta
        self.writer = writer
        self.rows = Rows(meta.dim)
        self.index = VectorIndex(meta.dim, meta.kind, meta.params)

    @property
    def count(self) -> int:
        """Rows stored."""
        return len(self.rows.texts)

    def apply(self, texts: list[str], vectors: FloatArray) -> None:
        """Add rows in memory (after they are durable in the log)."""
        self.rows.extend(texts, vectors)
        self.index.add(vectors)

    def append(self, texts: list[str], vectors: FloatArray) -> list[int]:
        """Make rows durable, then add them; returns their ids."""
        first = self.count
        self.writer.append(Record(first, np.asarray(vectors, np.float32), texts))
        self.apply(texts, vectors)
        return list(range(first, first + len(texts)))


class StoredIndex:
    """One persistent index. Row i (id i) is ``texts[i]`` with ``vectors[i]``."""

    def __init__(self, folder: Path, generation: Generation) -> None:
        self.folder = folder
        self._current = generation
        self.lock = threading.RLock()

    @classmethod
    def open(cls, folder: Path) -> StoredIndex:
        """Load the index in ``folder``: replay its log (cutting a torn tail), drop other generations' logs."""
        meta = read_meta(folder)
        path = folder / meta.log_name
        if not path.exists():
            LogWriter.create(path).close()
        records = replay(path, meta.dim)
        for leftover in folder.glob("vectors-*.log"):
            if leftover.name != meta.log_name:
                leftover.unlink()  # an interrupted re-embedding, or the old log of a finished one
        generation = Generation(meta, LogWriter(path))
        for record in records:
            generation.apply(record.texts, record.vectors)
        return cls(folder, generation)

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
        """Durably add rows embedded for ``generation``; ``StaleGenerationError`` if it was replaced meanwhile."""
        with self.lock:
            if self.meta.generation != generation:
                raise StaleGenerationError(f"index {self.meta.name} moved to generation {self.meta.generation}")
            return self._current.append(texts, vectors)

    def search(self, queries: FloatArray, k: int, model_version: int) -> list[list[Hit]]:
        """Top-k hits of each of (q, dim) unit queries embedded by ``model_version``, best first.

        ``StaleGenerationError`` if the index is no longer in that version's space (re-embedded meanwhile).
        """
        with self.lock:
            if self.meta.model_version != model_version:
                raise StaleGenerationError(f"index {self.meta.name} is now at version {self.meta.model_version}")
            scores, ids = self._current.index.search(queries, k)  # (q, k') each
            texts = self._current.rows.texts
            return [_hits(s, i, texts) for s, i in zip(scores, ids, strict=True)]

    def texts(self, start: int = 0, stop: int | None = None) -> list[str]:
        """A copy of texts ``start:stop``."""
        with self.lock:
            return self._current.rows.texts[start:stop]

    def snapshot(self) -> tuple[list[str], FloatArray, IndexMeta]:
        """Copies of all texts (n,), vectors (n, dim) and the metadata, taken together."""
        with self.lock:
            rows = self._current.rows
            return list(rows.texts), rows.vectors.copy(), self.meta

    def begin_generation(self, model_version: int) -> Generation:
        """A new, empty generation for ``model_version`` with its own log file (not yet in use)."""
        meta = self.meta.model_copy(update={"model_version": model_version, "generation": self.meta.generation + 1})
        return Generation(meta, LogWriter.create(self.folder / meta.log_name))

    def commit_generation(self, new: Generation) -> None:
        """Switch to ``new`` if it holds every row: rewrite meta.json atomically, then drop the old log."""
        with self.lock:
            if new.count != self.count:
                raise StaleGenerationError(f"index {self.meta.name}: {self.count - new.count} rows not re-embedded")
            write_meta(self.folder, new.meta)
            old, self._current = self._current, new
        old.writer.close()
        old.writer.path.unlink(missing_ok=True)

    def discard_generation(self, new: Generation) -> None:
        """Forget an unfinished generation and its log."""
        new.writer.close()
        new.writer.path.unlink(missing_ok=True)

    def close(self) -> None:
        """Close the log (everything acknowledged is already on disk)."""
        with self.lock:
            self._current.writer.close()


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

    def __init__(self, root: Path) -> None:
        self.root = root
        self._indexes: dict[str, StoredIndex] = {}
        self._lock = threading.Lock()

    @classmethod
    def open(cls, root: Path) -> IndexStore:
        """Load every index under ``root``; leftovers of interrupted creates/deletes go.

        ``root`` is created by the first :meth:`create`, so a service that never makes an index writes nothing.
        """
        store = cls(root)
        for folder in sorted(root.iterdir()) if root.is_dir() else []:
            if folder.name.startswith("."):
                shutil.rmtree(folder, ignore_errors=True)  # .tmp-* / .deleted-*: never acknowledged, or deleted
            elif (folder / META_FILE).is_file() and _servable_name(folder):
                store._open_one(folder)
        return store

    def _open_one(self, folder: Path) -> None:
        try:
            index = StoredIndex.open(folder)
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
            index = StoredIndex.open(self.root / meta.name)
            self._indexes[meta.name] = index
            return index

    def delete(self, name: str) -> None:
        """Remove an index: renamed away first (atomic), then its files are deleted."""
        with self._lock:
            index = self._indexes.pop(name, None)
            if index is None:
                raise UnknownIndexError(name)
            index.close()
            doomed = self.root / f".deleted-{name}-{uuid.uuid4().hex}"
            index.folder.rename(doomed)
            fsync_dir(self.root)
        shutil.rmtree(doomed, ignore_errors=True)

    def close(self) -> None:
        """Close every index's log."""
        with self._lock:
            for index in self._indexes.values():
                index.close()
