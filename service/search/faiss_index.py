"""FAISS indexes over unit vectors by inner product (= cosine): ``flat`` (exact), ``ivf`` and ``hnsw``.

Row i of an index is id i: vectors are only ever appended (ids are row numbers, see persistence.py).

* ``flat``: ``IndexFlatIP``, exact.
* ``ivf``: ``IndexIVFFlat`` with ``nlist`` lists, searched with ``nprobe``. k-means needs data, so the
  index is exact (a flat staging index) until ``train_size`` vectors (default 39 · nlist, FAISS's
  minimum for a stable k-means) are in; it is then trained on exactly the first ``train_size`` vectors,
  so a replay after a restart rebuilds the very same index.
* ``hnsw``: ``IndexHNSWFlat`` with ``m`` links per node, ``ef_construction`` and ``ef_search``.

Flat and IVF indexes move to the GPU when FAISS has GPU support and sees a GPU; HNSW stays on the CPU.

The vectors live only in the FAISS index (no second copy in Python): :meth:`VectorIndex.vectors` copies
rows out with ``reconstruct_n`` (a trained IVF keeps a direct map, 8 bytes per row, for that), and
:meth:`VectorIndex.restore` adopts an index read back from a snapshot (``service/search/snapshot.py``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from xalign.service.search.persistence import IndexKind

log = logging.getLogger("xalign.service")

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


class FlatParams(BaseModel):
    """No parameters: exact search."""

    model_config = ConfigDict(extra="forbid")


class IvfParams(BaseModel):
    """Inverted lists: ``nlist`` k-means cells, ``nprobe`` cells searched, trained at ``train_size`` vectors."""

    model_config = ConfigDict(extra="forbid")
    nlist: int = Field(default=100, ge=1, le=1 << 20)
    nprobe: int = Field(default=8, ge=1, le=1 << 20)
    train_size: int | None = Field(default=None, ge=1)

    def trained_at(self) -> int:
        """Vector count at which k-means runs (never fewer than ``nlist``)."""
        return max(self.nlist, self.train_size if self.train_size is not None else 39 * self.nlist)


class HnswParams(BaseModel):
    """HNSW graph: ``m`` neighbours per node, ``ef_construction`` when adding, ``ef_search`` when searching."""

    model_config = ConfigDict(extra="forbid")
    m: int = Field(default=32, ge=2, le=512)
    ef_construction: int = Field(default=40, ge=1, le=1 << 16)
    ef_search: int = Field(default=64, ge=1, le=1 << 16)


PARAMS: dict[str, type[BaseModel]] = {"flat": FlatParams, "ivf": IvfParams, "hnsw": HnswParams}


def validate_params(kind: IndexKind, params: dict[str, Any] | None) -> dict[str, int]:
    """The complete parameters of ``kind`` (defaults filled in); ``ValueError`` names a bad one."""
    try:
        model = PARAMS[kind].model_validate(params or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "params"
        raise ValueError(f"{kind} index parameter {where}: {first['msg']}") from None
    return {k: v for k, v in model.model_dump().items() if v is not None}


class _Gpu:
    """One FAISS GPU resource object for the process, created on first use (StandardGpuResources is costly)."""

    lock = threading.RLock()
    resources: Any = None

    @classmethod
    def available(cls) -> bool:
        return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0

    @classmethod
    def move(cls, index: Any) -> Any:
        with cls.lock:
            if cls.resources is None:
                cls.resources = faiss.StandardGpuResources()
            return faiss.index_cpu_to_gpu(cls.resources, 0, index)


class VectorIndex:
    """One FAISS index of ``kind`` over (n, dim) unit vectors; not thread-safe (callers lock)."""

    def __init__(self, dim: int, kind: IndexKind, params: dict[str, int], *, use_gpu: bool | None = None) -> None:
        self.dim = dim
        self.kind = kind
        self.use_gpu = _Gpu.available() if use_gpu is None else use_gpu
        self._ivf = IvfParams.model_validate(params) if kind == "ivf" else None
        self._index = self._build(params)
        # IVF before training: an exact index that holds everything until train_size vectors are in.
        self.trained = kind != "ivf"

    @property
    def device(self) -> str:
        """Where searches run: ``gpu`` or ``cpu``."""
        return "gpu" if self.use_gpu and self.kind != "hnsw" else "cpu"

    @property
    def ntotal(self) -> int:
        """Vectors in the index."""
        return int(self._index.ntotal)

    def _build(self, params: dict[str, int]) -> Any:
        if self.kind == "hnsw":
            hnsw = HnswParams.model_validate(params)
            index = faiss.IndexHNSWFlat(self.dim, hnsw.m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = hnsw.ef_construction
            index.hnsw.efSearch = hnsw.ef_search
            return index
        return self._on_device(faiss.IndexFlatIP(self.dim))

    def _on_device(self, index: Any) -> Any:
        return _Gpu.move(index) if self.device == "gpu" else index

    def add(self, vectors: FloatArray) -> None:
        """Append (n, dim) unit vectors; they get the next n ids. An IVF index trains once it has enough."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape[0] == 0:
            return
        with self._guard():
            self._index.add(vectors)
            if self._ivf is not None and not self.trained and self.ntotal >= self._ivf.trained_at():
                self._train_ivf(self._ivf)

    def _guard(self) -> contextlib.AbstractContextManager[Any]:
        # The GPU resource object is shared by every index and is not thread-safe: one GPU call at a time.
        return _Gpu.lock if self.device == "gpu" else contextlib.nullcontext()

    def _train_ivf(self, params: IvfParams) -> None:
        """Replace the staging index by an IVF trained on the first ``trained_at()`` vectors, holding all."""
        staged = self._index.reconstruct_n(0, self.ntotal)  # (n, dim)
        quantizer = faiss.IndexFlatIP(self.dim)
        ivf = faiss.IndexIVFFlat(quantizer, self.dim, params.nlist, faiss.METRIC_INNER_PRODUCT)
        ivf.train(np.ascontiguousarray(staged[: params.trained_at()]))
        ivf.nprobe = params.nprobe
        ivf.make_direct_map(True)  # so reconstruct_n can copy rows out: ids are row numbers
        ivf.add(staged)
        # The quantizer must outlive this frame: FAISS holds a raw pointer to it.
        self._quantizer = quantizer
        self._index = self._on_device(ivf)
        self.trained = True
        log.info("trained an IVF index: %d lists on %d vectors", params.nlist, params.trained_at())

    @classmethod
    def restore(
        cls, dim: int, kind: IndexKind, params: dict[str, int], stored: Any, *, use_gpu: bool | None = None
    ) -> VectorIndex:
        """An index around ``stored``, a CPU FAISS index read back from a snapshot; ``ValueError`` if it is not
        what ``kind`` over ``dim`` with ``params`` builds."""
        index = cls(dim, kind, params, use_gpu=use_gpu)
        index._adopt(stored, params)
        return index

    def _adopt(self, stored: Any, params: dict[str, int]) -> None:
        expected = {"flat": (faiss.IndexFlatIP,), "hnsw": (faiss.IndexHNSWFlat,)}
        types = expected.get(self.kind, (faiss.IndexFlatIP, faiss.IndexIVFFlat))
        if not isinstance(stored, types) or stored.d != self.dim or stored.metric_type != faiss.METRIC_INNER_PRODUCT:
            raise ValueError(f"the snapshot holds a {type(stored).__name__}, not a {self.kind} index of dim {self.dim}")
        if isinstance(stored, faiss.IndexHNSWFlat):
            stored.hnsw.efSearch = HnswParams.model_validate(params).ef_search
        elif self._ivf is not None:
            self._adopt_ivf(stored, self._ivf)
        if self.kind != "hnsw":
            stored = self._on_device(stored)
        self._index = stored

    def _adopt_ivf(self, stored: Any, params: IvfParams) -> None:
        self.trained = isinstance(stored, faiss.IndexIVFFlat)
        if not self.trained and stored.ntotal >= params.trained_at():
            raise ValueError("the snapshot holds an untrained IVF index past its training size")
        if self.trained:
            if stored.nlist != params.nlist or stored.direct_map.type != faiss.DirectMap.Array:
                raise ValueError("the snapshot's IVF index has other lists or no direct map")
            stored.nprobe = params.nprobe  # not part of FAISS's file format

    def cpu_index(self) -> Any:
        """The FAISS index on the CPU, to write (a copy when it lives on the GPU, else the index itself)."""
        with self._guard():
            return faiss.index_gpu_to_cpu(self._index) if self.device == "gpu" else self._index

    def vectors(self, start: int, stop: int) -> FloatArray:
        """A copy of rows ``start:stop`` as (stop - start, dim) float32."""
        if stop <= start:
            return np.zeros((0, self.dim), np.float32)
        with self._guard():
            return np.asarray(self._index.reconstruct_n(start, stop - start), dtype=np.float32)

    def search(self, queries: FloatArray, k: int) -> tuple[FloatArray, IntArray]:
        """Top-k ids and cosines of (q, dim) queries: (q, k') each, k' = min(k, ntotal); id -1 pads misses."""
        k_eff = min(k, self.ntotal)
        if k_eff == 0 or queries.shape[0] == 0:
            return np.zeros((queries.shape[0], 0), np.float32), np.zeros((queries.shape[0], 0), np.int64)
        with self._guard():
            scores, ids = self._index.search(np.ascontiguousarray(queries, dtype=np.float32), k_eff)
        return scores.astype(np.float32, copy=False), ids.astype(np.int64, copy=False)
