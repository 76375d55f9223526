"""A disk cache of per-sentence arrays: the frozen layers' token states, written once and memory-mapped after.

A cache folder holds one kind of entry (the recipe's key, ``frozen_states.py``, names the folder). Each entry is
a float32 array (T, H) of one text, T its token count, stored unpadded. Entries are written in shards:
``shard-<id>.npy`` holds the rows of many entries back to back, ``shard-<id>.json`` says where each entry's
rows start and how many there are. The index is written after its shard and both are renamed into place,
so a shard without an index (an interrupted write) is ignored; shard ids are random, so several processes can
add shards to one folder. Shards are opened memory-mapped: reading an entry touches only its pages.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

CACHE_FORMAT = 1
FloatArray = npt.NDArray[np.float32]


def cache_key(parts: dict[str, Any]) -> str:
    """A folder name for ``parts`` (JSON values): the first 24 hex digits of the sha256 of their JSON."""
    text = json.dumps({"format": CACHE_FORMAT, **parts}, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def text_key(text: str) -> str:
    """The entry key of ``text``: 32 hex digits of its sha256."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _write_atomically(path: Path, write: Any) -> None:
    staged = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with staged.open("wb") as handle:
        write(handle)
    staged.replace(path)


class StateCache:
    """Entries by key in ``folder`` (see the module docstring); new ones are kept until ``flush_every`` pile up."""

    def __init__(self, folder: Path, hidden: int, flush_every: int = 2048) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.hidden = hidden
        self.flush_every = flush_every
        self._shards: list[FloatArray] = []
        self._index: dict[str, tuple[int, int, int]] = {}  # key -> (shard, first row, rows)
        self._pending: dict[str, FloatArray] = {}
        self.stored = 0  # entries this object computed and stored
        for index_file in sorted(self.folder.glob("shard-*.json")):
            self._open(index_file)

    def _open(self, index_file: Path) -> None:
        rows = np.load(index_file.with_suffix(".npy"), mmap_mode="r")  # (total rows, H)
        if rows.ndim != 2 or rows.shape[1] != self.hidden:
            raise ValueError(f"{index_file}: shard of shape {rows.shape}, this cache holds width {self.hidden}")
        shard = len(self._shards)
        self._shards.append(rows)
        entries: dict[str, list[int]] = json.loads(index_file.read_text(encoding="utf-8"))["entries"]
        for key, (start, count) in entries.items():
            self._index.setdefault(key, (shard, start, count))

    def __len__(self) -> int:
        return len(self._index) + len(self._pending)

    def __contains__(self, key: str) -> bool:
        return key in self._pending or key in self._index

    def get(self, key: str) -> FloatArray:
        """The array (T, H) stored for ``key``; ``KeyError`` when there is none."""
        if key in self._pending:
            return self._pending[key]
        shard, start, count = self._index[key]
        return self._shards[shard][start : start + count]

    def put(self, key: str, states: FloatArray) -> None:
        """Store ``states`` (T, H) for ``key`` (kept in memory until the next flush)."""
        if states.ndim != 2 or states.shape[1] != self.hidden:
            raise ValueError(f"expected (tokens, {self.hidden}), got {states.shape}")
        if key not in self:
            self._pending[key] = np.ascontiguousarray(states, dtype=np.float32)
            self.stored += 1
        if len(self._pending) >= self.flush_every:
            self.flush()

    def flush(self) -> None:
        """Write the pending entries as one shard and its index, and map it."""
        if not self._pending:
            return
        name = f"shard-{uuid.uuid4().hex[:16]}"
        arrays = list(self._pending.values())
        starts = np.cumsum([0] + [len(a) for a in arrays[:-1]]).tolist()
        entries = {key: [start, len(a)] for (key, a), start in zip(self._pending.items(), starts, strict=True)}
        _write_atomically(self.folder / f"{name}.npy", lambda handle: np.save(handle, np.concatenate(arrays)))
        index = json.dumps({"format": CACHE_FORMAT, "entries": entries}).encode("utf-8")
        _write_atomically(self.folder / f"{name}.json", lambda handle: handle.write(index))
        self._pending = {}
        self._open(self.folder / f"{name}.json")
