"""Neighbour files of the mining job: the k-NN of each query shard in the whole other side, one file each.

Layout under the work folder::

    knn/knn.json               what the neighbours were searched from (the shards' manifest, k, the search)
    knn/fwd/shard-00000.npz    sims (rows, k) float32 and ids (rows, k) int64: src shard 0 in the tgt side
    knn/bwd/shard-00000.npz    the same for tgt shards in the src side
    index/tgt.ivf.faiss        an approximate index of one side, built once (``--index ivf|ivfpq|hnsw``)

Exact search runs a query shard against every shard of the other side with the engine's
``knn_chunked`` and keeps the k best with ``merge_neighbours`` (``runtime/mining/neighbours.py``), so ids
are rows of the whole side. Approximate search reads the saved index (``runtime/mining/ann.py``); IVF-PQ's
compressed similarities are replaced by exact ones read back from the shards. Files are written
atomically; a changed ``knn.json`` (other embeddings, k or search) discards them and the indexes.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import faiss
import numpy as np
import numpy.typing as npt

from xalign.runtime.mining.ann import AnnParams, IndexKind, build_index, knn_ann, rescore
from xalign.runtime.mining.atomic_files import replacing, write_text_atomic
from xalign.runtime.mining.neighbours import DEFAULT_CHUNK_ROWS, Neighbours, concat_rows, knn_chunked, merge_neighbours
from xalign.runtime.mining.progress import LOG
from xalign.runtime.mining.shards import ShardFiles

SearchKind = Literal["exact", "ivf", "ivfpq", "hnsw"]
KNN = "knn"
INDEX = "index"
RECORD = "knn.json"


@dataclass(frozen=True)
class SearchSettings:
    """How neighbours are searched: exactly or with an approximate index kind, and its knobs.

    ``chunk_rows`` bounds the block of similarities of an exact search (it changes memory, not results);
    ``params``, ``nprobe`` and ``ef_search`` apply to the approximate kinds (``runtime/mining/ann.py``).
    """

    kind: SearchKind = "exact"
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    params: AnnParams = field(default_factory=AnnParams)
    nprobe: int | None = None
    ef_search: int | None = None

    def record(self, embeddings: str, k: int) -> dict[str, Any]:
        """What the k-NN files depend on; ``embeddings`` is the text of the shards' manifest."""
        sha = hashlib.sha256(embeddings.encode()).hexdigest()
        record: dict[str, Any] = {"embeddings sha256": sha, "k": k, "search": self.kind}
        if self.kind != "exact":
            record.update(params=asdict(self.params), nprobe=self.nprobe, ef_search=self.ef_search)
        return record


def open_neighbours(work: Path, settings: SearchSettings, k: int, embeddings: str) -> None:
    """Keep the neighbour files and indexes under ``work`` if they were made the same way, else clear them."""
    folder, record = work / KNN, settings.record(embeddings, k)
    found = folder / RECORD
    if found.is_file():
        if json.loads(found.read_text(encoding="utf-8")) == record:
            return
        LOG.info("neighbours in %s were searched another way (k, search or embeddings): searching again", folder)
    for stale in (folder, work / INDEX):
        shutil.rmtree(stale, ignore_errors=True)
    for direction in ("fwd", "bwd"):
        (folder / direction).mkdir(parents=True)
    write_text_atomic(found, json.dumps(record, indent=2) + "\n")


@dataclass(frozen=True)
class SearchTask:
    """Search the rows of shard file ``query`` and write their neighbours to ``out``."""

    query: Path
    out: Path


def neighbour_path(work: Path, direction: str, shard: int) -> Path:
    """Neighbour file of query shard ``shard`` in direction ``fwd`` (src queries) or ``bwd``."""
    return work / KNN / direction / f"shard-{shard:05d}.npz"


def pending_searches(work: Path, direction: str, queries: ShardFiles) -> list[int]:
    """The query shards whose neighbour file is not there yet."""
    return [i for i in range(queries.count) if not neighbour_path(work, direction, i).is_file()]


def search_tasks(work: Path, direction: str, queries: ShardFiles, todo: list[int]) -> list[SearchTask]:
    """A task for each query shard in ``todo``."""
    return [SearchTask(queries.path(i), neighbour_path(work, direction, i)) for i in todo]


def save_neighbours(path: Path, neigh: Neighbours) -> None:
    """Write (n, k) sims and ids atomically."""
    with replacing(path) as tmp, tmp.open("wb") as handle:
        np.savez(handle, sims=neigh.sims, ids=neigh.ids)


def load_neighbours(work: Path, direction: str, shards: int) -> Neighbours:
    """The neighbours of every query shard of a direction, stacked in shard order: (rows, k)."""
    parts = []
    for shard in range(shards):
        with np.load(neighbour_path(work, direction, shard)) as data:
            parts.append(Neighbours(data["sims"], data["ids"]))
    return concat_rows(parts)


@dataclass(frozen=True)
class ExactSearch:
    """Exact k-NN of a query shard in every shard of the other side (``base`` files starting at ``offsets``)."""

    base: tuple[Path, ...]
    offsets: tuple[int, ...]
    k: int
    chunk_rows: int

    def __call__(self, task: SearchTask) -> int:
        """Search, write the task's neighbour file, return the number of queries."""
        queries = np.load(task.query, mmap_mode="r")  # (n, d)
        best: Neighbours | None = None
        for path, offset in zip(self.base, self.offsets, strict=True):
            part = knn_chunked(queries, np.load(path, mmap_mode="r"), self.k, self.chunk_rows)  # ids in the shard
            part = Neighbours(part.sims, part.ids + offset)
            best = part if best is None else merge_neighbours(best, part, self.k)
        assert best is not None  # a side has at least one shard
        save_neighbours(task.out, best)
        return int(queries.shape[0])


def exact_search(base: ShardFiles, k: int, settings: SearchSettings) -> ExactSearch:
    """The exact search of query shards in the side ``base``."""
    paths = tuple(base.path(i) for i in range(base.count))
    return ExactSearch(paths, tuple(int(o) for o in base.offsets[:-1]), k, settings.chunk_rows)


def index_path(work: Path, side: str, kind: str) -> Path:
    """Saved approximate index of ``side``."""
    return work / INDEX / f"{side}.{kind}.faiss"


def build_side_index(base: ShardFiles, path: Path, settings: SearchSettings) -> None:
    """Build the approximate index of a whole side (read into memory once) and save it atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    kind: IndexKind = settings.kind  # type: ignore[assignment]  # never "exact" here
    index = build_index(base.load_all(), kind, settings.params)
    with replacing(path) as tmp:
        faiss.write_index(index, str(tmp))


@dataclass
class IndexSearch:
    """Approximate k-NN of a query shard in a saved index; loads the index on first use.

    With ``exact_base`` (IVF-PQ), the similarities found are recomputed exactly from those shard files.
    """

    index: Path
    k: int
    settings: SearchSettings
    exact_base: ShardFiles | None = None
    _loaded: Any = field(default=None, init=False, repr=False, compare=False)

    def __call__(self, task: SearchTask) -> int:
        """Search, write the task's neighbour file, return the number of queries."""
        if self._loaded is None:
            self._loaded = faiss.read_index(str(self.index))
        s = self.settings
        queries = np.load(task.query, mmap_mode="r")  # (n, d)
        neigh = knn_ann(self._loaded, queries, self.k, nprobe=s.nprobe, ef_search=s.ef_search, chunk_rows=s.chunk_rows)
        if self.exact_base is not None:
            neigh = _rescore_from_shards(neigh, queries, self.exact_base)
        save_neighbours(task.out, neigh)
        return int(queries.shape[0])

    def __getstate__(self) -> dict[str, Any]:
        # The loaded index stays in this process; another one reads its own from the file.
        return {**self.__dict__, "_loaded": None}


def _rescore_from_shards(neigh: Neighbours, queries: Any, base: ShardFiles) -> Neighbours:
    """``rescore`` against the rows the neighbours name, gathered from the shards (not the whole side)."""
    found = neigh.ids >= 0  # (n, k)
    rows = np.unique(neigh.ids[found])  # (r,) sorted, so local ids keep the order (and ties) of global ones
    local = Neighbours(neigh.sims, np.where(found, np.searchsorted(rows, neigh.ids), -1))
    exact = rescore(local, queries, gather_rows(base, rows))
    return Neighbours(exact.sims, np.where(exact.ids >= 0, rows[exact.ids], -1))


def gather_rows(base: ShardFiles, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
    """Rows ``rows`` (sorted) of a side, read from its shards → (r, d) float32."""
    shard_of = np.searchsorted(base.offsets, rows, side="right") - 1  # (r,)
    parts: Sequence[npt.NDArray[np.float32]] = [
        np.asarray(base.load(int(s))[rows[shard_of == s] - base.offsets[s]], dtype=np.float32)
        for s in np.unique(shard_of)
    ]
    return np.concatenate(parts) if parts else np.zeros((0, base.dim), np.float32)
